mod tables;
mod vocab;
