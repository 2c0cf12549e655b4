//! lt-data: Datasets: readers, long-tail profiles, resamplers, class weights, Parquet out.
