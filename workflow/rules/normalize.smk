# rules of the 'normalize' stage (to come)
