//! Datasets in CoOp's layout and Dassl's sampling rules.
