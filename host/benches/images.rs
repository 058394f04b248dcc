//! Image benchmarks (a bench binary): `cargo bench --bench images`.
//!
//! `fit_for_model` on what users send, median and p99, with the bytes in and out:
//! - `photo`: a 12 MP phone photo (4032 × 3024 JPEG), scaled to the model's size;
//! - `screenshot`: a 4K screenshot (3840 × 2160 PNG), scaled and kept a PNG;
//! - `small`: an 800 × 600 JPEG that already fits (decoded to check it, passed on as is);
//! - `filters`: the photo's scaling step alone, with each resampling filter and with the
//!   box average `fit_for_model` uses from twice the size (it uses `Triangle` below that).
//!
//! `BENCH_QUICK=1` runs fewer iterations. A word after `--` runs only the sections whose
//! name contains it (e.g. `cargo bench --bench images -- photo`).

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use agent_host::model::fit_for_model;
use common::{ms, percentile, us};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, RgbImage};

fn main() {
    let iterations = if std::env::var_os("BENCH_QUICK").is_some() {
        5
    } else {
        30
    };
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let wanted = |section: &str| section.contains(filter.as_str());
    let photo = photo(4032, 3024);
    if wanted("photo") {
        fit("photo", &encoded(&photo, ImageFormat::Jpeg), iterations);
    }
    if wanted("screenshot") {
        fit(
            "screenshot",
            &encoded(&screenshot(3840, 2160), ImageFormat::Png),
            iterations,
        );
    }
    if wanted("small") {
        let small = photo.resize_exact(800, 600, FilterType::Triangle);
        fit("small", &encoded(&small, ImageFormat::Jpeg), iterations);
    }
    if wanted("filters") {
        filters(&photo, iterations);
    }
}

fn fit(name: &str, upload: &[u8], iterations: usize) {
    let mut samples = Vec::with_capacity(iterations);
    let mut fitted = None;
    for _ in 0..iterations {
        let started = Instant::now();
        fitted = Some(fit_for_model(upload).expect("the upload fits"));
        samples.push(started.elapsed());
    }
    let fitted = fitted.expect("at least one iteration");
    println!(
        "{name}: {} bytes in, {} bytes out ({} {}×{}); median {}, p99 {}",
        upload.len(),
        fitted.bytes.len(),
        fitted.format,
        fitted.width,
        fitted.height,
        shown(percentile(&samples, 50.0)),
        shown(percentile(&samples, 99.0)),
    );
}

/// Short times in µs, others in ms.
fn shown(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        us(duration)
    } else {
        ms(duration)
    }
}

fn filters(photo: &DynamicImage, iterations: usize) {
    let (width, height) = agent_host::model::image::model_size(photo.width(), photo.height());
    for (name, filter) in [
        ("Nearest", FilterType::Nearest),
        ("Triangle", FilterType::Triangle),
        ("CatmullRom", FilterType::CatmullRom),
        ("Lanczos3", FilterType::Lanczos3),
    ] {
        let samples = time(iterations, || {
            std::hint::black_box(photo.resize_exact(width, height, filter));
        });
        println!(
            "filters: {name} {}×{} → {width}×{height}: median {}",
            photo.width(),
            photo.height(),
            ms(percentile(&samples, 50.0))
        );
    }
    let samples = time(iterations, || {
        std::hint::black_box(photo.thumbnail_exact(width, height));
    });
    println!(
        "filters: thumbnail (box average): median {}",
        ms(percentile(&samples, 50.0))
    );
}

fn time(iterations: usize, mut run: impl FnMut()) -> Vec<Duration> {
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect()
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

/// Gradients with grain: compresses like a photo.
fn photo(width: u32, height: u32) -> DynamicImage {
    let mut grain = 0x9e37_79b9_u32;
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        grain ^= grain << 13;
        grain ^= grain >> 17;
        grain ^= grain << 5;
        let noise = (grain % 24) as u8;
        image::Rgb([
            ((x * 255 / width) as u8).saturating_add(noise),
            ((y * 255 / height) as u8).saturating_add(noise),
            (((x + y) * 255 / (width + height)) as u8).saturating_add(noise),
        ])
    }))
}

/// Flat panels with lines of "text": compresses like a screenshot.
fn screenshot(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        let panel = if x < width / 5 { 40 } else { 250 };
        let text = y % 24 < 14 && (x / 9) % 7 != 0 && (x * 31 + y * 17) % 5 < 2;
        if text {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([panel, panel, panel.saturating_add(5)])
        }
    }))
}
