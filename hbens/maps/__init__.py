"""The maps floor: per-class probability maps of images, however they were saved.

* :mod:`hbens.maps.probabilities` -- the hbens store: one ``.npz`` per image, per-class crops;
* :mod:`hbens.maps.saved_arrays` -- what other pipelines' arrays hold (kinds, layouts) and their crops;
* :mod:`hbens.maps.array_files` -- their files (``.npy``, ``.npz``, ``.pt``) read, probed and found;
* :mod:`hbens.maps.folders` -- folders of either kind, indexed by image name, and the inputs of a command;
* :mod:`hbens.maps.upsample` -- bilinear upsampling of low-resolution logits over a crop.

It stands on the ground floor (classes, rle, runs, submission, frames, settings, pipeline) and no
module in it imports a wing (ensemble, postproc, predictors, tune).
"""
