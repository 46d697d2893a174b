"""``semc demo``: a live simulated session processed end to end, with a ground-truth summary.

- :mod:`semc.demo.runner`: the demo itself (microscope and daemon processes, progress, summary);
- :mod:`semc.demo.home`: the demo's SEMC home, pinned to standalone SQLite;
- :mod:`semc.demo.collect`: reads progress, stored results and ground truth back (Django);
- :mod:`semc.demo.accuracy`: the comparison with the ground truth (pure);
- :mod:`semc.demo.display`: the progress line and the summary table (pure text).
"""
