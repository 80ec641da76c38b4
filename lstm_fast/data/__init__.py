"""Small real datasets shipped with lstm_fast (no network needed).

See README.md in this folder for each file's source, citation and license.
"""

from __future__ import annotations

import csv
import os

import numpy as np

__all__ = ["CO2_CSV", "load_co2"]

CO2_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "co2_mauna_loa_monthly.csv")


def load_co2():
    """Monthly mean atmospheric CO2 at Mauna Loa, March 1958 - December 2001 (526 months).

    The public-domain Scripps/CDIAC record of weekly averages, averaged per
    month; the 5 months without any weekly average are linearly interpolated
    (their `n_weeks` is 0).

    Returns:
        dict of NumPy arrays, each (526,): 'year' and 'month' (int64),
        'co2_ppm' (float64, parts per million), 'n_weeks' (int64, weekly
        averages behind each month's mean; 0 = interpolated).

    Example:

    >>> from lstm_fast.data import load_co2
    >>> co2 = load_co2()
    >>> co2["co2_ppm"][:3]
    array([316.1 , 317.2 , 317.43])
    """
    with open(CO2_CSV, newline="") as f:
        rows = [row for row in csv.reader(line for line in f if not line.startswith("#"))]
    header, body = rows[0], rows[1:]
    columns = dict(zip(header, zip(*body)))
    return {
        "year": np.array(columns["year"], dtype=np.int64),
        "month": np.array(columns["month"], dtype=np.int64),
        "co2_ppm": np.array(columns["co2_ppm"], dtype=np.float64),
        "n_weeks": np.array(columns["n_weeks"], dtype=np.int64),
    }
