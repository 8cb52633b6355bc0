# rules of the 'report' stage (to come)
