//! A scenario on real nodes in this process (`dsys demo`).
