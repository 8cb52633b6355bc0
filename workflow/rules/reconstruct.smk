# rules of the 'reconstruct' stage (to come)
