#!/usr/bin/env python3
"""Writes bad_frames.h5, the malformed frame stacks of tests/cli/detect_errors.sh (h5py, numpy).

usage: make_fixtures.py [OUT]   (default: bad_frames.h5 beside this script)
"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "bad_frames.h5")
with h5py.File(out, "w", track_order=True) as f:
    f["rank2"] = np.zeros((16, 16), np.uint8)                  # one frame, no time axis
    f["float"] = np.zeros((2, 16, 16), np.float32)             # not integer grey levels
    f["signed"] = np.zeros((2, 16, 16), np.int16)              # signed
    f["empty"] = np.zeros((0, 16, 16), np.uint8)               # no frames
    f.create_group("group")                                    # not a dataset
    f["hwt"] = np.zeros((24, 32, 3), np.uint8) + 128           # [H, W, T]
