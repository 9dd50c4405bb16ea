"""Snapshots: overlayfs layers and container upper dirs; knows nothing of images.

* :mod:`.overlay` — :class:`~berth.snapshots.overlay.Snapshotter` (unpack, prepare, mount, remove).
* :mod:`.layer` — layer tars in (:func:`apply_layer`) and out (:func:`write_layer`, :func:`write_tree`).
* :mod:`.changes` — ``docker diff`` of an upper dir.
* :mod:`.fsutil` — :func:`secure_join` and other filesystem primitives.
"""
