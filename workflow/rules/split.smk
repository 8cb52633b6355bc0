# rules of the 'split' stage (to come)
