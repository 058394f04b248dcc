//! Pictures for the model: what Claude on Bedrock accepts, and how an upload is made to fit.
//!
//! Converse takes png, jpeg, gif and webp images of at most [`MAX_IMAGE_BYTES`] and
//! [`MAX_IMAGE_SIDE`] pixels a side. Claude itself looks at no more than about
//! [`MODEL_LONG_SIDE`] pixels on the long side and [`MODEL_PIXELS`] pixels in all: the
//! service scales anything larger down before the model sees it. So [`fit_for_model`]
//! scales to those bounds itself: the model sees the same picture, and every request of
//! the conversation (one per tool turn) carries a few hundred kilobytes instead of up to
//! 3.75 MB. (Newer models read more detail, e.g. Opus 4.7 up to about 2576 px; raise the
//! two bounds when the configured model does.)
//!
//! Decoding runs under the `image` crate's [`Limits`], so a decompression bomb (huge
//! dimensions in a tiny file) is refused from its header, before anything is allocated.
//!
//! [`read_for_request`] is the other end: the image a conversation refers to, read again
//! when a request is built, and refused if it is no longer what was sent.

use std::fmt;
use std::io::{Cursor, Read as _};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

use super::types::ImageRef;

/// The largest image Converse accepts, in bytes ("3.75 MB", read as the smaller decimal
/// megabytes).
pub const MAX_IMAGE_BYTES: usize = 3_750_000;
/// The longest side Converse accepts, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8000;
/// The longest side the model looks at; longer images are scaled down by the service.
pub const MODEL_LONG_SIDE: u32 = 1568;
/// The most pixels the model looks at (1092 × 1092, about 1.15 megapixels, the largest
/// square Anthropic lists as not resized); larger images are scaled down by the service.
pub const MODEL_PIXELS: u64 = 1092 * 1092;
/// Pixels per token of an image, as Anthropic counts them.
const PIXELS_PER_TOKEN: u64 = 750;

/// The longest side decoded at all: beyond it the image is refused from its header.
pub const MAX_DECODE_SIDE: u32 = 32_768;
/// The most memory a decoded image may take (8000 × 8000 RGBA, the largest picture the
/// service itself would take, fits).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// JPEG qualities tried in turn when re-encoding, best first.
const JPEG_QUALITIES: [u8; 3] = [85, 70, 50];

/// An image format the model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF (the model sees its first frame).
    Gif,
    /// WebP.
    Webp,
}

impl ImageFormat {
    /// The usual file name extension, without the dot (`jpg` for JPEG).
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }

    /// The format's name as Converse spells it (`png`, `jpeg`, `gif`, `webp`).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }

    /// The format `bytes` start with, from their signature (never from a file name, which
    /// may lie); `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        match image::guess_format(bytes).ok()? {
            image::ImageFormat::Png => Some(ImageFormat::Png),
            image::ImageFormat::Jpeg => Some(ImageFormat::Jpeg),
            image::ImageFormat::Gif => Some(ImageFormat::Gif),
            image::ImageFormat::WebP => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    fn codec(self) -> image::ImageFormat {
        match self {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Gif => image::ImageFormat::Gif,
            ImageFormat::Webp => image::ImageFormat::WebP,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An image ready for the model: within every limit of the service and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedImage {
    /// The encoded image (the upload itself when it already fitted).
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: ImageFormat,
    /// Its width in pixels, as stored.
    pub width: u32,
    /// Its height in pixels, as stored.
    pub height: u32,
}

impl FittedImage {
    /// The reference a conversation keeps once these bytes are saved at `path` (absolute,
    /// inside the user's workspace).
    pub fn reference(&self, path: std::path::PathBuf) -> ImageRef {
        ImageRef {
            path,
            format: self.format,
            width: self.width,
            height: self.height,
        }
    }
}

/// Why an upload cannot be shown to the model. The message is for the user who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// No image format the model reads starts like this.
    #[error(
        "not an image the model can read (png, jpeg, gif, webp): send the picture as a photo or \
         as a file in one of those formats"
    )]
    NotAnImage,
    /// A known image format the model does not read.
    #[error(
        "this is a {0} image, which the model cannot read (it reads png, jpeg, gif and webp): \
         convert it to one of those, or send it as a photo"
    )]
    UnsupportedFormat(&'static str),
    /// It starts like an image the model reads but does not decode.
    #[error(
        "the {format} image is damaged or incomplete and cannot be read ({detail}): send it again"
    )]
    Damaged {
        /// The format it claims to be.
        format: ImageFormat,
        /// What the decoder said.
        detail: String,
    },
    /// Too large to decode safely (a decompression bomb looks like this too).
    #[error(
        "the image is too large to process (at most {MAX_DECODE_SIDE} pixels a side and \
         {} megapixels): send a smaller one",
        MAX_DECODE_BYTES / 4 / 1_000_000
    )]
    TooLarge,
    /// Even re-encoded at the model's size it stays over the service's byte limit.
    #[error(
        "the image stays too large for the model even when scaled down ({bytes} bytes, at most \
         {MAX_IMAGE_BYTES}): send a smaller or simpler one"
    )]
    CannotFit {
        /// The smallest encoding reached.
        bytes: usize,
    },
}

/// Makes an upload fit the model: detects the format from the bytes, returns an image that
/// already fits unchanged, and scales a larger one down (keeping its aspect ratio) and
/// re-encodes it. PNG and GIF (screenshots, diagrams) become PNG when that fits, anything
/// else, or a PNG still too large, JPEG. An image whose EXIF says to turn it is re-encoded
/// upright even when it fits, since the re-encoded pixels carry no EXIF.
///
/// CPU-bound (a few hundred milliseconds for a 12 MP photo): call it off the async
/// executor.
pub fn fit_for_model(bytes: &[u8]) -> Result<FittedImage, ImageError> {
    let format = ImageFormat::detect(bytes).ok_or_else(|| unreadable_format(bytes))?;
    let damaged = |error: image::ImageError| match error {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        other => ImageError::Damaged {
            format,
            detail: other.to_string(),
        },
    };
    let mut decoder = decoder(bytes, format).map_err(damaged)?;
    let (width, height) = decoder.dimensions();
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(ImageError::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // Decoding everything, even an image passed on unchanged, proves it is not damaged:
    // Bedrock would refuse a broken one and fail the whole task.
    let mut image = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    let (fit_width, fit_height) = model_size(width, height);
    let resized = (fit_width, fit_height) != (width, height);
    if !resized && bytes.len() <= MAX_IMAGE_BYTES && orientation == Orientation::NoTransforms {
        return Ok(FittedImage {
            bytes: bytes.to_vec(),
            format,
            width,
            height,
        });
    }
    if resized {
        image = scale(&image, fit_width, fit_height);
    }
    // After scaling: turning a large image would copy all of its pixels.
    image.apply_orientation(orientation);
    encode(&image, format)
}

/// `image` scaled down to `width` × `height`. From twice the size or more, by averaging the
/// source pixels that fall on each target pixel: about three times faster than a triangle
/// filter on a 12 MP photo (see `benches/images.rs`) and as good at such ratios. Closer to
/// the target, where that average would alias fine lines such as a screenshot's text,
/// with a triangle filter.
fn scale(image: &DynamicImage, width: u32, height: u32) -> DynamicImage {
    if image.width() >= 2 * width && image.height() >= 2 * height {
        image.thumbnail_exact(width, height)
    } else {
        image.resize_exact(width, height, FilterType::Triangle)
    }
}

/// A decoder for `bytes` under the limits: width, height and memory are checked against
/// the header before any pixel is decoded.
fn decoder(bytes: &[u8], format: ImageFormat) -> image::ImageResult<impl ImageDecoder + '_> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.codec());
    reader.limits(limits);
    reader.into_decoder()
}

/// The size the model looks at an image of `width` × `height` in: scaled down (aspect
/// ratio kept, never below one pixel) to at most [`MODEL_LONG_SIDE`] a side and
/// [`MODEL_PIXELS`] in all; unchanged when already within both.
pub fn model_size(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let by_side = f64::from(MODEL_LONG_SIDE) / w.max(h);
    let by_area = (MODEL_PIXELS as f64 / (w * h)).sqrt();
    let scale = by_side.min(by_area);
    if scale >= 1.0 {
        return (width, height);
    }
    let side = |n: f64| ((n * scale + 1e-6).floor() as u32).max(1);
    let (mut width, mut height) = (side(w), side(h));
    // Floating point may land a hair over a bound: step back a pixel.
    while u64::from(width) * u64::from(height) > MODEL_PIXELS || width.max(height) > MODEL_LONG_SIDE
    {
        if width >= height {
            width -= 1;
        } else {
            height -= 1;
        }
    }
    (width, height)
}

/// About how many input tokens the model spends on an image of `width` × `height`: its
/// pixels at the size the model looks at it (see [`model_size`]) over 750.
pub fn model_tokens(width: u32, height: u32) -> usize {
    let (w, h) = model_size(width, height);
    (u64::from(w) * u64::from(h)).div_ceil(PIXELS_PER_TOKEN) as usize
}

/// `image`, decoded from `source`, encoded within [`MAX_IMAGE_BYTES`]: as PNG first when it
/// came from a PNG or GIF (screenshots, diagrams: sharp edges, few colours), else (or when
/// the PNG is too large) as JPEG at falling qualities.
fn encode(image: &DynamicImage, source: ImageFormat) -> Result<FittedImage, ImageError> {
    let fitted = |bytes: Vec<u8>, format| FittedImage {
        bytes,
        format,
        width: image.width(),
        height: image.height(),
    };
    let encoding_failed = |error: image::ImageError| ImageError::Damaged {
        format: source,
        detail: format!("re-encoding failed: {error}"),
    };
    let mut smallest = usize::MAX;
    if matches!(source, ImageFormat::Png | ImageFormat::Gif) {
        let mut png = Vec::new();
        let encoder =
            PngEncoder::new_with_quality(&mut png, CompressionType::Default, PngFilter::Adaptive);
        image.write_with_encoder(encoder).map_err(encoding_failed)?;
        if png.len() <= MAX_IMAGE_BYTES {
            return Ok(fitted(png, ImageFormat::Png));
        }
        smallest = png.len();
    }
    let opaque = flatten(image);
    for quality in JPEG_QUALITIES {
        let mut jpeg = Vec::new();
        let encoder = JpegEncoder::new_with_quality(&mut jpeg, quality);
        opaque
            .write_with_encoder(encoder)
            .map_err(encoding_failed)?;
        if jpeg.len() <= MAX_IMAGE_BYTES {
            return Ok(fitted(jpeg, ImageFormat::Jpeg));
        }
        smallest = smallest.min(jpeg.len());
    }
    Err(ImageError::CannotFit { bytes: smallest })
}

/// `image` without transparency, for JPEG: transparent pixels over white, as a viewer
/// shows them (dropping the alpha channel would show whatever colour they hide, often
/// black).
fn flatten(image: &DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return match image {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image.clone(),
            other => DynamicImage::ImageRgb8(other.to_rgb8()),
        };
    }
    let rgba = image.to_rgba8();
    let over_white = |channel: u8, alpha: u8| {
        let (c, a) = (u16::from(channel), u16::from(alpha));
        ((c * a + 255 * (255 - a) + 127) / 255) as u8
    };
    DynamicImage::ImageRgb8(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        image::Rgb([over_white(r, a), over_white(g, a), over_white(b, a)])
    }))
}

/// The error for bytes no readable format starts with, naming the format when it is a
/// known image format the model does not read.
fn unreadable_format(bytes: &[u8]) -> ImageError {
    // ISO base media files (HEIC from iPhones, AVIF) name their brand after `ftyp`.
    if bytes.get(4..8) == Some(b"ftyp") {
        match bytes.get(8..12) {
            Some(b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1") => {
                return ImageError::UnsupportedFormat("HEIC");
            }
            Some(b"avif" | b"avis") => return ImageError::UnsupportedFormat("AVIF"),
            _ => {}
        }
    }
    // Only formats whose signature cannot be the start of ordinary text are named.
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Tiff) => ImageError::UnsupportedFormat("TIFF"),
        Ok(image::ImageFormat::OpenExr) => ImageError::UnsupportedFormat("OpenEXR"),
        Ok(image::ImageFormat::Qoi) => ImageError::UnsupportedFormat("QOI"),
        Ok(image::ImageFormat::Bmp) if looks_like_bmp(bytes) => {
            ImageError::UnsupportedFormat("BMP")
        }
        _ => ImageError::NotAnImage,
    }
}

/// `BM` followed by a plausible BMP header (its info header size at byte 14).
fn looks_like_bmp(bytes: &[u8]) -> bool {
    let Some(size) = bytes.get(14..18) else {
        return false;
    };
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    matches!(size, 12 | 40 | 52 | 56 | 64 | 108 | 124)
}

/// Why an image a conversation refers to cannot be sent any more. Logged; the model is
/// told the image is no longer available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleImage {
    /// The file cannot be read (deleted, permissions, ...).
    #[error("cannot read {path}: {error}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// The path now leads elsewhere (a symbolic link on the way), so the bytes may not be
    /// the user's upload: the host reads them outside the tools' sandbox.
    #[error("{0} is no longer the file that was sent (a symbolic link leads elsewhere)")]
    Moved(String),
    /// The file changed: another format or size, or larger than Bedrock takes.
    #[error("{path} changed since it was sent: {what}")]
    Changed {
        /// The file.
        path: String,
        /// What differs.
        what: String,
    },
}

/// The bytes of the image `image` refers to, for a request: read only if the file is still
/// the one sent (same path with no link on the way, same format and dimensions, within
/// Bedrock's limits), so what reaches Bedrock is always something it accepts. Only the
/// header is decoded.
pub fn read_for_request(image: &ImageRef) -> Result<Vec<u8>, StaleImage> {
    let path = &image.path;
    let shown = || path.display().to_string();
    let unreadable = |error: std::io::Error| StaleImage::Unreadable {
        path: shown(),
        error: error.to_string(),
    };
    let changed = |what: String| StaleImage::Changed {
        path: shown(),
        what,
    };
    if std::fs::canonicalize(path).map_err(unreadable)? != *path {
        return Err(StaleImage::Moved(shown()));
    }
    let bytes = read_at_most(path, MAX_IMAGE_BYTES).map_err(unreadable)?;
    let Some(bytes) = bytes else {
        return Err(changed(format!("larger than {MAX_IMAGE_BYTES} bytes")));
    };
    match ImageFormat::detect(&bytes) {
        Some(format) if format == image.format => {}
        Some(format) => return Err(changed(format!("{format}, not {}", image.format))),
        None => return Err(changed(format!("no longer a {} image", image.format))),
    }
    let dimensions = decoder(&bytes, image.format).map(|decoder| decoder.dimensions());
    match dimensions {
        Ok(dimensions) if dimensions == (image.width, image.height) => {}
        Ok((width, height)) => {
            return Err(changed(format!(
                "{width}×{height} pixels, not {}×{}",
                image.width, image.height
            )));
        }
        Err(error) => return Err(changed(format!("its header does not decode: {error}"))),
    }
    if image.width.max(image.height) > MAX_IMAGE_SIDE {
        return Err(changed(format!("more than {MAX_IMAGE_SIDE} pixels a side")));
    }
    Ok(bytes)
}

/// The file at `path`, or `None` when it is longer than `max` bytes (without reading more
/// than one byte past `max`). The last component must not be a symbolic link.
fn read_at_most(path: &Path, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= max).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba, RgbaImage};

    fn encoded(image: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    /// A smooth picture (gradients): compresses the way photos and screenshots do.
    fn picture(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        }))
    }

    /// Noise in every channel, alpha included: compresses to nothing.
    fn noise(width: u32, height: u32) -> DynamicImage {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Rgba(state.to_le_bytes()[..4].try_into().unwrap())
        }))
    }

    #[test]
    fn a_small_image_passes_untouched() {
        let bytes = encoded(&picture(300, 200), image::ImageFormat::Png);
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(fitted.bytes, bytes, "not re-encoded");
        assert_eq!(
            (fitted.format, fitted.width, fitted.height),
            (ImageFormat::Png, 300, 200)
        );
    }

    #[test]
    fn gif_and_webp_are_detected_from_their_bytes() {
        for (codec, format) in [
            (image::ImageFormat::Gif, ImageFormat::Gif),
            (image::ImageFormat::WebP, ImageFormat::Webp),
            (image::ImageFormat::Jpeg, ImageFormat::Jpeg),
        ] {
            let bytes = encoded(&picture(64, 48), codec);
            assert_eq!(ImageFormat::detect(&bytes), Some(format));
            let fitted = fit_for_model(&bytes).unwrap();
            assert_eq!(fitted.format, format);
            assert_eq!(fitted.bytes, bytes, "{format} passes untouched");
        }
    }

    #[test]
    fn a_very_wide_image_is_scaled_to_the_model_keeping_its_shape() {
        let bytes = encoded(&picture(9000, 20), image::ImageFormat::Png);
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(fitted.format, ImageFormat::Png, "a PNG stays a PNG");
        assert_eq!((fitted.width, fitted.height), (MODEL_LONG_SIDE, 3));
        let decoded = image::load_from_memory(&fitted.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (MODEL_LONG_SIDE, 3));
    }

    #[test]
    fn a_large_photo_is_scaled_within_both_model_bounds() {
        let bytes = encoded(&picture(4032, 3024), image::ImageFormat::Jpeg);
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(fitted.format, ImageFormat::Jpeg);
        assert_eq!((fitted.width, fitted.height), model_size(4032, 3024));
        assert!(fitted.width.max(fitted.height) <= MODEL_LONG_SIDE);
        assert!(u64::from(fitted.width) * u64::from(fitted.height) <= MODEL_PIXELS);
        let ratio = f64::from(fitted.width) / f64::from(fitted.height);
        assert!(
            (ratio - 4.0 / 3.0).abs() < 0.01,
            "aspect ratio kept: {ratio}"
        );
    }

    #[test]
    fn a_screenshot_is_scaled_and_stays_a_png() {
        let bytes = encoded(&picture(1920, 1080), image::ImageFormat::Png);
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(
            (fitted.format, fitted.width, fitted.height),
            (ImageFormat::Png, 1456, 819)
        );
        let decoded = image::load_from_memory(&fitted.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (1456, 819));
    }

    #[test]
    fn too_many_bytes_at_the_model_size_become_a_jpeg_that_fits() {
        // 1000 × 1000 is within the model's bounds, but noise with alpha is ~4 MB as PNG.
        let bytes = encoded(&noise(1000, 1000), image::ImageFormat::Png);
        assert!(bytes.len() > MAX_IMAGE_BYTES, "{} bytes", bytes.len());
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(fitted.format, ImageFormat::Jpeg);
        assert_eq!((fitted.width, fitted.height), (1000, 1000));
        assert!(fitted.bytes.len() <= MAX_IMAGE_BYTES);
        assert_eq!(ImageFormat::detect(&fitted.bytes), Some(ImageFormat::Jpeg));
    }

    #[test]
    fn a_photo_the_camera_held_sideways_is_turned_upright() {
        // EXIF (big-endian TIFF) with one entry: orientation 6, "turn 90° clockwise".
        let exif = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
        let mut bytes = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 90);
        image::ImageEncoder::set_exif_metadata(&mut encoder, exif).unwrap();
        picture(40, 20).write_with_encoder(encoder).unwrap();
        let fitted = fit_for_model(&bytes).unwrap();
        assert_eq!(
            (fitted.format, fitted.width, fitted.height),
            (ImageFormat::Jpeg, 20, 40)
        );
        let decoded = image::load_from_memory(&fitted.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (20, 40));
    }

    #[test]
    fn transparency_becomes_white_in_a_jpeg() {
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0])));
        let flat = flatten(&clear).to_rgb8();
        assert_eq!(flat.get_pixel(0, 0), &Rgb([255, 255, 255]));
        let half = DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 128])));
        assert_eq!(
            flatten(&half).to_rgb8().get_pixel(0, 0),
            &Rgb([127, 127, 127])
        );
    }

    #[test]
    fn garbage_is_refused_with_what_to_do() {
        for bytes in [&b""[..], b"hello, this is text", &[0xde, 0xad, 0xbe, 0xef]] {
            let error = fit_for_model(bytes).unwrap_err();
            assert_eq!(error, ImageError::NotAnImage);
            assert!(
                error
                    .to_string()
                    .starts_with("not an image the model can read (png, jpeg, gif, webp)"),
                "{error}"
            );
        }
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let error = fit_for_model(heic).unwrap_err().to_string();
        assert!(
            error.contains("HEIC") && error.contains("convert it"),
            "{error}"
        );
    }

    #[test]
    fn a_truncated_image_is_damaged() {
        let bytes = encoded(&picture(300, 200), image::ImageFormat::Png);
        let error = fit_for_model(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            matches!(
                &error,
                ImageError::Damaged {
                    format: ImageFormat::Png,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("send it again"), "{error}");
    }

    /// A PNG whose header claims `width` × `height` pixels, with one tiny compressed row:
    /// what a decompression bomb looks like before it is inflated.
    fn bomb(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &byte in bytes {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xedb8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &header);
        // A zlib stream of a few zero bytes (stored block): far fewer than the header claims.
        chunk(
            &mut png,
            b"IDAT",
            &[
                0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x01,
            ],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // Sides beyond the decoder's limit: refused by the crate's strict limits.
        let error = fit_for_model(&bomb(100_000, 100_000)).unwrap_err();
        assert_eq!(error, ImageError::TooLarge);
        // Sides within it but 30000 × 30000 × 3 bytes = 2.7 GB of pixels.
        let error = fit_for_model(&bomb(30_000, 30_000)).unwrap_err();
        assert_eq!(error, ImageError::TooLarge);
        assert!(error.to_string().contains("send a smaller one"), "{error}");
    }

    #[test]
    fn model_size_and_tokens_follow_anthropics_rules() {
        assert_eq!(model_size(800, 600), (800, 600));
        assert_eq!(model_size(1092, 1092), (1092, 1092));
        assert_eq!(model_size(2000, 1000), (1544, 772), "the area bound");
        assert_eq!(model_size(20_000, 100), (1568, 7), "the side bound");
        assert_eq!(model_size(0, 0), (0, 0));
        assert_eq!(model_tokens(750, 1), 1);
        assert_eq!(model_tokens(1092, 1092), 1590);
        assert_eq!(
            model_tokens(8000, 8000),
            1590,
            "the model never looks at more"
        );
    }
}
