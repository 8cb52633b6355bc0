# rules of the 'preprocess' stage (to come)
