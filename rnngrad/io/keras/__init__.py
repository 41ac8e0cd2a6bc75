"""Keras weights (``rnngrad[keras]``, h5py only): :mod:`.reader` finds the layers of Keras 2/3
HDF5 files and ``.keras`` archives, :mod:`.layers` maps each recurrent layer onto PyTorch's
conventions and the activations its config names, :mod:`.hdf5` reads HDF5 safely (this file's
own objects only, sizes checked first), :mod:`.archive` reads ``.keras`` zips without
inflating more than it may."""
