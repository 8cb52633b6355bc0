# rules of the 'atlas' stage (to come)
