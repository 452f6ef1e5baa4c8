mod conformance;
mod miles;
