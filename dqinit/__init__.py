"""dqinit: the DQ initialization step of the IRIS/Liger ramp calibration."""
