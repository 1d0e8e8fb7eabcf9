//! A toolkit for YAML files read by people: nodes that keep their place in
//! the file ([`node`]), `${VAR}` interpolation ([`interpolate`]), and a
//! reader that checks typed values and collects every problem with its
//! line and column ([`reader`]). It knows nothing of poolwright.yaml's
//! schema: the config loader and the providers' decoders build on it.

pub mod interpolate;
pub mod node;
pub mod reader;
