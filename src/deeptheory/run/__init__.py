"""The per-run kit that both training paths share (``engine`` trains one run, ``packed``
many at once), one module per reason to change:

- ``streams``: a run's random streams (init, data order, SGDL noise);
- ``subsets``: the training subset and labels a run trains on;
- ``evaluation``: loss and error of a net on a data split;
- ``book``: the stop rule and its evaluation schedule (RunBook);
- ``trend``: the loss-trend statistic the stop rule and the claims read;
- ``checkpoints``: the checkpoint format, its save and load, and fork for shared prefixes;
- ``results``: what a run hands back, with the metrics schema every row carries.

Each run owns its generators (subset, labels, init, data order), which makes a run's
numbers independent of what else trains in the same process; that is what lets the packed
path train many runs of one architecture in one pass without changing them. Devices live in
``deeptheory.devices``.
"""



