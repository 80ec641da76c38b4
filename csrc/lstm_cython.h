/* Included by the Cython binding instead of lstm.h: NumPy's headers pull in
 * <complex.h>, whose macro I would rewrite the field lf_lstm_dims.I. */
#ifdef I
#undef I
#endif
#include "lstm.h"
