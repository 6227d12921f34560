"""Trackers at run time: RT-MDNet / MetaRTT (:mod:`.rtmdnet`), MetaRTT+Prune (:mod:`.pruned`), OpenCV
peers, the TrackConfig presets, and the one registry that names every tracker."""
