//! The image side of the reference pipeline, pixel for pixel and without libtorch.
//!
//! - [`image`]: files to 8-bit RGB exactly as PIL's `Image.open(path).convert("RGB")` (JPEG by
//!   libjpeg-turbo with PIL's settings, PNG by the `image` crate).
//! - [`transforms`]: Dassl's test and train transforms for CLIP (PIL's bicubic resampling to the
//!   bit, torchvision's `RandomResizedCrop` draws, `ToTensor` + `Normalize` in float32), writing
//!   channel-major float buffers that the caller wraps as tensors.
pub mod image;
pub mod transforms;
