# rules of the 'simulate' stage (to come)
