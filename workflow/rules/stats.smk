# rules of the 'stats' stage (to come)
