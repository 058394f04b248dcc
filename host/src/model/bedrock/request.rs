//! Requests in Bedrock's shape: the system prompt, the tools and the conversation, with
//! three cache points — after the system prompt, after the tools, at the end of the
//! conversation.
//!
//! Tool schemas and tool inputs become SDK `Document`s, whose objects serialise in a
//! random order per conversion (see [`super::convert`]). So everything in the cached
//! prefix is converted once and the result reused: the tools once per tool list, each
//! message once while it is in use. Otherwise the bytes sent change from turn to turn and
//! the prompt cache misses.
//!
//! Images are kept in the conversation as references to files; a message's images are read
//! (off the async executor) when the message is first converted, and travel with its
//! kept conversion from then on, so a task's turns do not read them again. An image whose
//! file is gone or changed becomes a line of text saying so, never a failed task. A
//! request carries at most [`MAX_IMAGES_PER_REQUEST`] images, the newest.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, ImageBlock,
    ImageFormat as SdkImageFormat, ImageSource, Message as SdkMessage, SystemContentBlock, Tool,
    ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolResultStatus,
    ToolSpecification, ToolUseBlock,
};

use super::convert::to_document;
use crate::model::image::{StaleImage, read_for_request};
use crate::model::{Block, ImageFormat, ImageRef, Message, ModelError, Role, ToolDefinition};

/// How long a converted message is kept after its last use: Bedrock's prompt cache lives
/// five minutes, so bytes older than that gain nothing by staying identical.
const KEEP_UNUSED: Duration = Duration::from_secs(10 * 60);

/// Above this many converted messages, the unused ones are swept out.
const SWEEP_ABOVE: usize = 4096;

/// Above this many bytes of images held in converted messages, the unused ones are swept
/// out.
const SWEEP_IMAGE_BYTES_ABOVE: usize = 64 * 1024 * 1024;

/// The most images one request may carry (Converse's limit); older ones are left out.
pub const MAX_IMAGES_PER_REQUEST: usize = 20;

/// The images read for one request's new conversions, by reference.
type ReadImages = HashMap<ImageRef, Result<Vec<u8>, StaleImage>>;

/// The system prompt: the text, then a cache point.
pub fn system_blocks(prompt: &str) -> Vec<SystemContentBlock> {
    vec![
        SystemContentBlock::Text(prompt.to_string()),
        SystemContentBlock::CachePoint(cache_point()),
    ]
}

/// A cache point block.
pub fn cache_point() -> CachePointBlock {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .expect("a cache point has only its type")
}

/// The tools followed by a cache point, or `None` when there are none.
fn tool_configuration(tools: &[ToolDefinition]) -> Result<Option<ToolConfiguration>, ModelError> {
    if tools.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len() + 1);
    for tool in tools {
        let spec = ToolSpecification::builder()
            .name(&tool.name)
            .description(&tool.description)
            .input_schema(ToolInputSchema::Json(to_document(&tool.input_schema)))
            .build()
            .map_err(|e| ModelError::InvalidRequest(format!("tool {}: {e}", tool.name)))?;
        specs.push(Tool::ToolSpec(spec));
    }
    specs.push(Tool::CachePoint(cache_point()));
    let config = ToolConfiguration::builder()
        .set_tools(Some(specs))
        .build()
        .map_err(|e| ModelError::InvalidRequest(e.to_string()))?;
    Ok(Some(config))
}

/// `message` in the SDK's shape; its images from `images` when `images_shown`, else (and
/// in an assistant message, where Bedrock refuses them) a line saying they were left out.
fn to_sdk_message(message: &Message, images_shown: bool, images: &ReadImages) -> SdkMessage {
    let content = message
        .content
        .iter()
        .map(|block| match block {
            Block::Text { text } => ContentBlock::Text(non_empty(text)),
            Block::ToolUse { id, name, input } => ContentBlock::ToolUse(
                ToolUseBlock::builder()
                    .tool_use_id(id)
                    .name(name)
                    .input(to_document(input))
                    .build()
                    .expect("tool use has id, name and input"),
            ),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => ContentBlock::ToolResult(
                ToolResultBlock::builder()
                    .tool_use_id(tool_use_id)
                    .content(ToolResultContentBlock::Text(non_empty(content)))
                    .status(if *is_error {
                        ToolResultStatus::Error
                    } else {
                        ToolResultStatus::Success
                    })
                    .build()
                    .expect("tool result has id and content"),
            ),
            Block::Image(image) => image_block(image, message.role, images_shown, images),
        })
        .collect();
    let role = match message.role {
        Role::User => ConversationRole::User,
        Role::Assistant => ConversationRole::Assistant,
    };
    SdkMessage::builder()
        .role(role)
        .set_content(Some(content))
        .build()
        .expect("message has role and content")
}

/// The content block for `image`: the image itself, or a line of text saying why not.
fn image_block(image: &ImageRef, role: Role, shown: bool, images: &ReadImages) -> ContentBlock {
    let path = image.path.display();
    let left_out = |why: &str| ContentBlock::Text(format!("[image {path} {why}]"));
    if role != Role::User {
        return left_out("left out: only user messages may hold images");
    }
    if !shown {
        return left_out(&format!(
            "not sent again: a request carries at most the {MAX_IMAGES_PER_REQUEST} newest images"
        ));
    }
    match images.get(image) {
        Some(Ok(bytes)) => ContentBlock::Image(
            ImageBlock::builder()
                .format(sdk_format(image.format))
                .source(ImageSource::Bytes(Blob::new(bytes.clone())))
                .build()
                .expect("an image block has its format and source"),
        ),
        Some(Err(stale)) => {
            tracing::warn!("image left out of the model request: {stale}");
            left_out("is no longer available")
        }
        None => left_out("is no longer available"),
    }
}

fn sdk_format(format: ImageFormat) -> SdkImageFormat {
    match format {
        ImageFormat::Png => SdkImageFormat::Png,
        ImageFormat::Jpeg => SdkImageFormat::Jpeg,
        ImageFormat::Gif => SdkImageFormat::Gif,
        ImageFormat::Webp => SdkImageFormat::Webp,
    }
}

/// Per message, whether its images go into the request: those of the newest messages
/// holding at most [`MAX_IMAGES_PER_REQUEST`] images in all. A message without images is
/// always `true`, so its kept conversion never depends on where that boundary lies.
fn images_shown(messages: &[Message]) -> Vec<bool> {
    let mut shown = vec![true; messages.len()];
    let mut count = 0;
    for (index, message) in messages.iter().enumerate().rev() {
        let images = image_refs(message).count();
        if images == 0 {
            continue;
        }
        count += images;
        shown[index] = count <= MAX_IMAGES_PER_REQUEST;
        if !shown[index] {
            // Older images stay out too, however few: the newest are the ones kept.
            count = usize::MAX / 2;
        }
    }
    shown
}

fn image_refs(message: &Message) -> impl Iterator<Item = &ImageRef> {
    message.content.iter().filter_map(|block| match block {
        Block::Image(image) => Some(image),
        _ => None,
    })
}

/// Reads `wanted` on a blocking thread (file I/O must not stall the async executor).
async fn read_images(wanted: Vec<ImageRef>) -> ReadImages {
    let read = |wanted: Vec<ImageRef>| -> ReadImages {
        wanted
            .into_iter()
            .map(|image| {
                let bytes = read_for_request(&image);
                (image, bytes)
            })
            .collect()
    };
    let again = wanted.clone();
    match tokio::task::spawn_blocking(move || read(wanted)).await {
        Ok(images) => images,
        // The blocking pool is gone (the runtime is shutting down): read here.
        Err(_) => read(again),
    }
}

/// Bedrock rejects empty text blocks.
fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "(no output)".to_string()
    } else {
        text.to_string()
    }
}

/// A tool list and its conversion (`None`: no tools).
type ConvertedTools = (Arc<[ToolDefinition]>, Option<ToolConfiguration>);

/// Conversions kept for reuse, shared by every conversation of one client.
#[derive(Default)]
pub struct Conversions {
    tools: Mutex<Option<ConvertedTools>>,
    messages: Mutex<MessageMemo>,
}

#[derive(Default)]
struct MessageMemo {
    hasher: RandomState,
    /// Content hash → a message's kept conversion. The message itself is kept to compare
    /// on a hit, so a hash collision can never swap a message.
    entries: HashMap<u64, Converted>,
    /// Bytes of images held in `entries`.
    image_bytes: usize,
}

/// One message's conversion, kept while in use.
struct Converted {
    message: Message,
    /// Whether its images were put in (see [`images_shown`]).
    images_shown: bool,
    sdk: SdkMessage,
    /// Bytes of the images in `sdk`.
    image_bytes: usize,
    used: Instant,
}

impl Conversions {
    /// The tool configuration of `tools`, converted once per `Arc`.
    pub fn tools(
        &self,
        tools: &Arc<[ToolDefinition]>,
    ) -> Result<Option<ToolConfiguration>, ModelError> {
        let mut cached = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((key, config)) = cached.as_ref()
            && Arc::ptr_eq(key, tools)
        {
            return Ok(config.clone());
        }
        let config = tool_configuration(tools)?;
        *cached = Some((tools.clone(), config.clone()));
        Ok(config)
    }

    /// The conversation in the SDK's shape, each message converted once while in use,
    /// with a cache point after the last message. The images of messages converted now
    /// are read first, off the executor and outside the lock.
    pub async fn messages(&self, messages: &[Message]) -> Vec<SdkMessage> {
        let shown = images_shown(messages);
        let now = Instant::now();
        let kept: Vec<Option<SdkMessage>> = {
            let mut memo = self.memo();
            messages
                .iter()
                .zip(&shown)
                .map(|(message, &shown)| memo.get(message, shown, now))
                .collect()
        };
        let mut wanted: Vec<ImageRef> = Vec::new();
        for ((message, kept), &shown) in messages.iter().zip(&kept).zip(&shown) {
            if kept.is_none() && shown && message.role == Role::User {
                for image in image_refs(message) {
                    if !wanted.contains(image) {
                        wanted.push(image.clone());
                    }
                }
            }
        }
        let images = if wanted.is_empty() {
            ReadImages::new()
        } else {
            read_images(wanted).await
        };
        let mut memo = self.memo();
        let mut converted: Vec<SdkMessage> = messages
            .iter()
            .zip(shown)
            .zip(kept)
            .map(|((message, shown), kept)| {
                kept.unwrap_or_else(|| memo.insert(message, shown, &images, now))
            })
            .collect();
        if memo.entries.len() > SWEEP_ABOVE || memo.image_bytes > SWEEP_IMAGE_BYTES_ABOVE {
            memo.sweep(now);
        }
        if let Some(last) = converted.last_mut() {
            last.content.push(ContentBlock::CachePoint(cache_point()));
        }
        converted
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, MessageMemo> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MessageMemo {
    /// The kept conversion of `message`, if any, marked as used `now`.
    fn get(&mut self, message: &Message, images_shown: bool, now: Instant) -> Option<SdkMessage> {
        let key = self.key(message, images_shown);
        let entry = self.entries.get_mut(&key)?;
        if entry.message != *message || entry.images_shown != images_shown {
            return None;
        }
        entry.used = now;
        Some(entry.sdk.clone())
    }

    /// Converts `message` with its images from `images`, and keeps the conversion.
    fn insert(
        &mut self,
        message: &Message,
        images_shown: bool,
        images: &ReadImages,
        now: Instant,
    ) -> SdkMessage {
        let sdk = to_sdk_message(message, images_shown, images);
        let image_bytes = sdk
            .content
            .iter()
            .map(|block| match block {
                ContentBlock::Image(image) => match image.source() {
                    Some(ImageSource::Bytes(bytes)) => bytes.as_ref().len(),
                    _ => 0,
                },
                _ => 0,
            })
            .sum();
        let key = self.key(message, images_shown);
        let entry = Converted {
            message: message.clone(),
            images_shown,
            sdk: sdk.clone(),
            image_bytes,
            used: now,
        };
        self.image_bytes += image_bytes;
        if let Some(replaced) = self.entries.insert(key, entry) {
            self.image_bytes -= replaced.image_bytes;
        }
        sdk
    }

    /// Drops the conversions unused for [`KEEP_UNUSED`].
    fn sweep(&mut self, now: Instant) {
        self.entries
            .retain(|_, entry| now.duration_since(entry.used) < KEEP_UNUSED);
        self.image_bytes = self.entries.values().map(|entry| entry.image_bytes).sum();
    }

    fn key(&self, message: &Message, images_shown: bool) -> u64 {
        struct HashWriter<H>(H);
        impl<H: std::hash::Hasher> std::io::Write for HashWriter<H> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.write(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut writer = HashWriter(self.hasher.build_hasher());
        // Serialising our own types cannot fail; a failure would only cost a cache miss.
        let _ = serde_json::to_writer(&mut writer, message);
        writer.0.write_u8(u8::from(images_shown));
        writer.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_use(input: serde_json::Value) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "t1".into(),
                name: "Read".into(),
                input,
            }],
        }
    }

    fn kept(conversions: &Conversions) -> usize {
        conversions.memo().entries.len()
    }

    #[tokio::test]
    async fn a_message_keeps_its_conversion_while_in_use() {
        let conversions = Conversions::default();
        let input = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
        let conversation = [Message::user_text("hi"), tool_use(input.clone())];
        let first = conversions.messages(&conversation).await;
        let second = conversions.messages(&conversation).await;
        assert_eq!(first, second);
        assert_eq!(
            kept(&conversions),
            2,
            "the second request reused both conversions"
        );
        conversions.messages(&[Message::user_text("other")]).await;
        assert_eq!(kept(&conversions), 3);
        assert!(matches!(
            first[1].content.last(),
            Some(ContentBlock::CachePoint(_))
        ));
        assert!(!matches!(
            first[0].content.last(),
            Some(ContentBlock::CachePoint(_))
        ));
    }

    #[test]
    fn tools_are_converted_once_per_list() {
        let conversions = Conversions::default();
        let tools: Arc<[ToolDefinition]> = Arc::from(vec![ToolDefinition {
            name: "Read".into(),
            description: "reads".into(),
            input_schema: json!({"type": "object"}),
        }]);
        let first = conversions.tools(&tools).unwrap().unwrap();
        assert_eq!(first.tools().len(), 2, "the tool and a cache point");
        assert_eq!(Some(first), conversions.tools(&tools).unwrap());
        assert_eq!(conversions.tools(&Arc::from(Vec::new())).unwrap(), None);
    }

    /// A small PNG saved in `dir` as `name`, and its reference.
    fn saved_png(dir: &std::path::Path, name: &str) -> (ImageRef, Vec<u8>) {
        let picture = image::RgbImage::from_fn(16, 8, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture
            .write_to(&mut bytes, image::ImageFormat::Png)
            .unwrap();
        let bytes = bytes.into_inner();
        let path = dir.canonicalize().unwrap().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let fitted = crate::model::fit_for_model(&bytes).unwrap();
        (fitted.reference(path), bytes)
    }

    fn with_images(text: &str, images: &[ImageRef]) -> Message {
        let mut message = Message::user_text(text);
        message
            .content
            .extend(images.iter().cloned().map(Block::Image));
        message
    }

    /// The image bytes and texts of `message`'s content, in order.
    fn contents(message: &SdkMessage) -> Vec<Result<Vec<u8>, String>> {
        message
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Image(image) => match image.source() {
                    Some(ImageSource::Bytes(bytes)) => Some(Ok(bytes.as_ref().to_vec())),
                    _ => None,
                },
                ContentBlock::Text(text) => Some(Err(text.clone())),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn an_image_is_read_once_and_travels_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let (image, bytes) = saved_png(dir.path(), "a.png");
        let conversions = Conversions::default();
        let conversation = [with_images("look", std::slice::from_ref(&image))];
        let first = conversions.messages(&conversation).await;
        assert_eq!(
            contents(&first[0]),
            vec![Err("look".to_string()), Ok(bytes.clone())]
        );
        // Gone now, but the message's kept conversion still has it: not read again.
        std::fs::remove_file(&image.path).unwrap();
        let second = conversions.messages(&conversation).await;
        assert_eq!(first, second);
        // A new message referring to the deleted file gets a line instead.
        let later = [with_images("again", std::slice::from_ref(&image))];
        let third = conversions.messages(&later).await;
        let line = format!("[image {} is no longer available]", image.path.display());
        assert_eq!(
            contents(&third[0]),
            vec![Err("again".to_string()), Err(line)]
        );
    }

    #[tokio::test]
    async fn a_changed_or_linked_file_is_no_longer_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = saved_png(dir.path(), "a.png");
        let conversions = Conversions::default();
        let unavailable = |converted: &[SdkMessage]| matches!(&contents(&converted[0])[1], Err(text) if text.ends_with("is no longer available]"));
        // Other pixels, same format: the dimensions no longer match.
        let mut other = image.clone();
        other.width = 17;
        assert!(unavailable(
            &conversions.messages(&[with_images("a", &[other])]).await
        ));
        // Another format.
        let mut other = image.clone();
        other.format = ImageFormat::Jpeg;
        assert!(unavailable(
            &conversions.messages(&[with_images("b", &[other])]).await
        ));
        // A symbolic link where the file was (the agent's tools could have put it there).
        let (target, _) = saved_png(dir.path(), "b.png");
        std::fs::remove_file(&image.path).unwrap();
        std::os::unix::fs::symlink(&target.path, &image.path).unwrap();
        assert!(unavailable(
            &conversions.messages(&[with_images("c", &[image])]).await
        ));
    }

    #[tokio::test]
    async fn a_request_carries_the_newest_images_only() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<ImageRef> = (0..MAX_IMAGES_PER_REQUEST + 2)
            .map(|n| saved_png(dir.path(), &format!("{n}.png")).0)
            .collect();
        let reply = || Message {
            role: Role::Assistant,
            content: vec![Block::Text { text: "ok".into() }],
        };
        // Two old images, then the limit's worth in two messages.
        let conversation = [
            with_images("old", &images[..2]),
            reply(),
            with_images("first half", &images[2..12]),
            reply(),
            with_images("second half", &images[12..]),
        ];
        let converted = Conversions::default().messages(&conversation).await;
        let sent: usize = converted
            .iter()
            .flat_map(|m| &m.content)
            .filter(|b| matches!(b, ContentBlock::Image(_)))
            .count();
        assert_eq!(sent, MAX_IMAGES_PER_REQUEST);
        let old = contents(&converted[0]);
        assert!(
            matches!(&old[1], Err(text) if text.contains("not sent again")),
            "{old:?}"
        );
    }

    #[tokio::test]
    async fn an_image_in_an_assistant_message_becomes_text() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = saved_png(dir.path(), "a.png");
        let message = Message {
            role: Role::Assistant,
            content: vec![Block::Image(image)],
        };
        let converted = Conversions::default().messages(&[message]).await;
        assert!(
            matches!(&contents(&converted[0])[0], Err(text) if text.contains("only user messages"))
        );
    }
}
