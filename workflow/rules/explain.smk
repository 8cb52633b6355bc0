# rules of the 'explain' stage (to come)
