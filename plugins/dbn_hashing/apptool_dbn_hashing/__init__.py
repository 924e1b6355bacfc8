"""DBN semantic hashing: images to short binary codes, retrieved by Hamming distance."""
