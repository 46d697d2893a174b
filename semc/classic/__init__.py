"""Drop-in classic Appion command lines (makeDDAlignMotionCor2_UCSF.py, ctffind4.py, runJob.py)."""
