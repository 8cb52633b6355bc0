# rules of the 'train' stage (to come)
