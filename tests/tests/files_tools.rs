//! End-to-end tests of the `files` plugin (`Read`, `Write`, `Edit`) through the real
//! component and host runtime: the texts tools.md fixes, the files left on disk, the
//! read-before-write rule, atomic writes, and every way out of the workspace we could think
//! of.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use agent_host_tests::Fixture;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `File does not exist. …` as tools.md fixes it for this fixture's workspace.
fn missing_text(fx: &Fixture) -> String {
    format!(
        "File does not exist. Note: your current working directory is {}.",
        fx.root().display()
    )
}

const NOT_READ: &str = "<tool_use_error>File has not been read yet. Read it first before writing to it.</tool_use_error>";

/// Asserts an error names the workspace root as the boundary that was hit.
#[track_caller]
fn assert_outside(fx: &Fixture, text: &str) {
    let needle = format!("outside the workspace {}", fx.root().display());
    assert!(text.contains(&needle), "expected {needle:?} in:\n{text}");
}

/// Asserts the modified-since-read refusal.
#[track_caller]
fn assert_modified(text: &str) {
    assert!(
        text.starts_with("<tool_use_error>File has been modified since read,"),
        "{text}"
    );
    assert!(text.contains("Read it again"), "{text}");
    assert!(text.ends_with("</tool_use_error>"), "{text}");
}

/// The last `n` characters of `text`, for failure messages.
fn tail(text: &str, n: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

fn read(fx: &Fixture, rel: &str) -> String {
    fx.ok("Read", json!({"file_path": fx.p(rel)}))
}

fn text_of(fx: &Fixture, rel: &str) -> String {
    String::from_utf8(fx.read(rel)).expect("utf-8 on disk")
}

/// Moves a file's mtime far into the past, as another program writing it would change it.
fn touch_elsewhere(path: &Path) {
    let file = fs::File::options()
        .write(true)
        .open(path)
        .expect("open to set mtime");
    file.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .expect("set mtime");
}

/// Every file and directory name under `dir`, recursively (symlinks not followed).
fn all_names(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("list dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Asserts no temporary file of an atomic write is left under `dir`.
#[track_caller]
fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<_> = all_names(dir)
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// A second directory outside the workspace, canonical.
struct Outside {
    /// Kept so the directory lives as long as the test.
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("outside dir");
        let root = dir.path().canonicalize().expect("canonical outside dir");
        Self { _dir: dir, root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::write(&path, text).expect("write outside file");
        path
    }

    /// Every name in the outside directory, to check nothing was created there.
    fn names(&self) -> Vec<PathBuf> {
        let mut names = all_names(&self.root);
        names.sort();
        names
    }
}

// ---------------------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------------------

#[test]
fn read_numbers_lines_with_a_tab_and_no_padding() {
    let fx = Fixture::new();
    fx.write("a.txt", "alpha\nbeta\n\ngamma\n");
    assert_eq!(read(&fx, "a.txt"), "1\talpha\n2\tbeta\n3\t\n4\tgamma");
}

#[test]
fn read_without_final_newline_shows_the_last_line() {
    let fx = Fixture::new();
    fx.write("a.txt", "one\ntwo");
    assert_eq!(read(&fx, "a.txt"), "1\tone\n2\ttwo");
}

#[test]
fn read_offset_and_limit_select_lines() {
    let fx = Fixture::new();
    let body: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    fx.write("forty.txt", &body);
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("forty.txt"), "offset": 5, "limit": 3}),
    );
    assert_eq!(
        text,
        "5\tline 5\n6\tline 6\n7\tline 7\n\n(Showing lines 5-7 of 40. To read on, call Read with offset 8.)"
    );
    // The last page has no note.
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("forty.txt"), "offset": 39, "limit": 10}),
    );
    assert_eq!(text, "39\tline 39\n40\tline 40");
    // offset 0 means line 1.
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("forty.txt"), "offset": 0, "limit": 2}),
    );
    assert!(
        text.starts_with("1\tline 1\n2\tline 2\n\n(Showing lines 1-2 of 40."),
        "{text}"
    );
}

#[test]
fn read_rejects_bad_offset_and_limit_types() {
    let fx = Fixture::new();
    fx.write("a.txt", "x\n");
    for input in [
        json!({"file_path": fx.p("a.txt"), "offset": -1}),
        json!({"file_path": fx.p("a.txt"), "limit": 0}),
        json!({"file_path": fx.p("a.txt"), "limit": "ten"}),
        json!({"file_path": fx.p("a.txt"), "lines": 3}),
        json!({}),
    ] {
        let text = fx.err("Read", input);
        assert!(text.starts_with("<tool_use_error>"), "{text}");
    }
}

#[test]
fn read_relative_path_is_taken_from_the_workspace_root() {
    let fx = Fixture::new();
    fx.write("src/lib.rs", "pub fn f() {}\n");
    assert_eq!(
        fx.ok("Read", json!({"file_path": "src/lib.rs"})),
        "1\tpub fn f() {}"
    );
    assert_eq!(
        fx.ok("Read", json!({"file_path": "./src/../src/lib.rs"})),
        "1\tpub fn f() {}"
    );
}

#[test]
fn read_empty_file_is_a_note_not_an_error() {
    let fx = Fixture::new();
    fx.write("empty.txt", "");
    let text = read(&fx, "empty.txt");
    assert!(text.contains("empty"), "{text}");
    assert!(!text.contains("1\t"), "{text}");
}

#[test]
fn read_offset_past_the_end_gives_the_line_count() {
    let fx = Fixture::new();
    fx.write("three.txt", "a\nb\nc\n");
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("three.txt"), "offset": 10}),
    );
    assert!(text.contains("has 3 lines"), "{text}");
    assert!(text.contains("offset 10"), "{text}");
    let text = fx.ok("Read", json!({"file_path": fx.p("three.txt"), "offset": 4}));
    assert!(text.contains("has 3 lines"), "{text}");
}

#[test]
fn read_cuts_very_long_lines_with_a_marker() {
    let fx = Fixture::new();
    let long = "x".repeat(5000);
    fx.write("long.txt", format!("short\n{long}\nafter\n"));
    let text = read(&fx, "long.txt");
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "1\tshort");
    let shown = lines[1].strip_prefix("2\t").expect("numbered");
    assert!(shown.starts_with(&"x".repeat(2000)), "{shown}");
    assert!(
        !shown.starts_with(&"x".repeat(2001)),
        "more than 2000 characters kept"
    );
    assert!(
        shown.contains("line cut") && shown.contains("5000"),
        "{shown}"
    );
    assert_eq!(lines[2], "3\tafter");
    // Exactly 2000 characters (multi-byte ones) are not cut.
    let exact = "é".repeat(2000);
    fx.write("exact.txt", format!("{exact}\n"));
    assert_eq!(read(&fx, "exact.txt"), format!("1\t{exact}"));
    // A long line of emoji is cut on a character boundary.
    let emoji = "😀".repeat(3000);
    fx.write("emoji.txt", format!("{emoji}\n"));
    let text = read(&fx, "emoji.txt");
    assert!(
        text.starts_with(&format!("1\t{}", "😀".repeat(2000))),
        "cut not at 2000 emoji"
    );
    assert!(text.contains("3000"), "{}", tail(&text, 80));
}

#[test]
fn read_missing_file_says_it_does_not_exist() {
    let fx = Fixture::new();
    assert_eq!(
        fx.err("Read", json!({"file_path": fx.p("nope.txt")})),
        missing_text(&fx)
    );
    assert_eq!(
        fx.err("Read", json!({"file_path": fx.p("no/such/dir/f.txt")})),
        missing_text(&fx)
    );
}

#[test]
fn read_directory_says_so_and_suggests_glob_or_ls() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.path("src")).expect("mkdir");
    let text = fx.err("Read", json!({"file_path": fx.p("src")}));
    assert!(text.contains(&fx.p("src")), "{text}");
    assert!(text.contains("is a directory"), "{text}");
    assert!(text.contains("Glob") && text.contains("ls"), "{text}");
    // The workspace root itself too.
    let text = fx.err(
        "Read",
        json!({"file_path": fx.root().display().to_string()}),
    );
    assert!(text.contains("is a directory"), "{text}");
}

#[test]
fn read_refuses_binary_files() {
    let fx = Fixture::new();
    fx.write("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0");
    let text = fx.err("Read", json!({"file_path": fx.p("image.png")}));
    assert!(text.contains("binary"), "{text}");
    // A NUL after the first 8 KB does not make a file binary.
    let mut late = vec![b'a'; 9000];
    late.extend_from_slice(b"\0\n");
    fx.write("late.txt", &late);
    let text = read(&fx, "late.txt");
    assert!(text.starts_with("1\taaaa"), "{}", tail(&text, 20));
}

#[test]
fn read_shows_invalid_utf8_lossily() {
    let fx = Fixture::new();
    fx.write("latin1.txt", b"caf\xe9 ok\n\xff\xfe end\n");
    assert_eq!(
        read(&fx, "latin1.txt"),
        "1\tcaf\u{FFFD} ok\n2\t\u{FFFD}\u{FFFD} end"
    );
}

#[test]
fn read_shows_crlf_lines_without_the_cr() {
    let fx = Fixture::new();
    fx.write("dos.txt", "first\r\nsecond\r\nthird");
    assert_eq!(read(&fx, "dos.txt"), "1\tfirst\n2\tsecond\n3\tthird");
    // A lone CR inside a line is text and stays.
    fx.write("cr.txt", "a\rb\r\n");
    assert_eq!(read(&fx, "cr.txt"), "1\ta\rb");
}

#[test]
fn read_unicode_content_and_path() {
    let fx = Fixture::new();
    fx.write("données/日本語 😀.txt", "héllo 🌍\nzwei Äpfel\n");
    let text = fx.ok("Read", json!({"file_path": fx.p("données/日本語 😀.txt")}));
    assert_eq!(text, "1\théllo 🌍\n2\tzwei Äpfel");
}

#[test]
fn read_default_limit_is_2000_lines_with_a_note_on_how_to_read_on() {
    let fx = Fixture::new();
    let body: String = (1..=3000).map(|i| format!("l{i}\n")).collect();
    fx.write("three-thousand.txt", &body);
    let text = read(&fx, "three-thousand.txt");
    let (lines, note) = text.split_once("\n\n").expect("a note after the lines");
    assert_eq!(lines.lines().count(), 2000);
    assert!(lines.starts_with("1\tl1\n"));
    assert!(lines.ends_with("\n2000\tl2000"));
    assert_eq!(
        note,
        "(Showing lines 1-2000 of 3000. To read on, call Read with offset 2001.)"
    );
    let rest = fx.ok(
        "Read",
        json!({"file_path": fx.p("three-thousand.txt"), "offset": 2001}),
    );
    assert_eq!(rest.lines().count(), 1000);
    assert!(
        rest.starts_with("2001\tl2001\n") && rest.ends_with("\n3000\tl3000"),
        "{}",
        tail(&rest, 40)
    );
}

#[test]
fn read_large_file_is_refused_whole_but_pages_with_offset_and_limit() {
    let fx = Fixture::new();
    let body: String = (1..=50_000).map(|i| format!("line number {i}\n")).collect();
    assert!(body.len() > 256 * 1024);
    fx.write("big.log", &body);

    let text = fx.err("Read", json!({"file_path": fx.p("big.log")}));
    assert!(
        text.contains("offset") && text.contains("limit") && text.contains("Grep"),
        "{text}"
    );
    assert!(text.contains("256 KB"), "{text}");

    let text = fx.ok("Read", json!({"file_path": fx.p("big.log"), "limit": 2}));
    assert_eq!(
        text,
        "1\tline number 1\n2\tline number 2\n\n(Showing lines 1-2 of 50000. To read on, call Read with offset 3.)"
    );
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("big.log"), "offset": 25_000, "limit": 3}),
    );
    assert_eq!(
        text,
        "25000\tline number 25000\n25001\tline number 25001\n25002\tline number 25002\n\n\
         (Showing lines 25000-25002 of 50000. To read on, call Read with offset 25003.)"
    );
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("big.log"), "offset": 49_999}),
    );
    assert_eq!(text, "49999\tline number 49999\n50000\tline number 50000");
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("big.log"), "offset": 60_000, "limit": 5}),
    );
    assert!(text.contains("has 50000 lines"), "{text}");
    // An offset alone is enough to page (the default 2000 lines).
    let text = fx.ok("Read", json!({"file_path": fx.p("big.log"), "offset": 1}));
    assert!(
        text.ends_with("(Showing lines 1-2000 of 50000. To read on, call Read with offset 2001.)")
    );
}

#[test]
fn read_pages_stop_before_the_result_gets_too_big() {
    let fx = Fixture::new();
    let line = "y".repeat(1500);
    let body: String = (0..400).map(|_| format!("{line}\n")).collect();
    fx.write("wide.txt", &body);
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("wide.txt"), "offset": 1, "limit": 400}),
    );
    assert!(
        text.len() <= 256 * 1024 + 200,
        "result of {} bytes",
        text.len()
    );
    let note = text.rsplit("\n\n").next().expect("note");
    assert!(
        note.contains("stopped early") && note.contains("of 400"),
        "{note}"
    );
    // The note's offset continues exactly after the last line shown.
    let shown = text.split("\n\n").next().expect("lines").lines().count();
    assert!(note.contains(&format!("offset {}", shown + 1)), "{note}");
}

/// Bigger than the plugin's whole memory cap (256 MB): Read with offset/limit must stream.
/// The file is sparse (a long run of NUL bytes after 8 KB of text), so creating it is free.
#[test]
fn read_streams_a_file_larger_than_the_plugin_memory() {
    let fx = Fixture::new();
    let header: String = (1..=2000).map(|i| format!("header line {i}\n")).collect();
    let path = fx.write("huge.dat", &header);
    let file = fs::File::options().write(true).open(&path).expect("open");
    let gap: u64 = 300 * 1024 * 1024;
    file.set_len(header.len() as u64 + gap)
        .expect("grow sparse");
    let mut file = fs::File::options()
        .append(true)
        .open(&path)
        .expect("append");
    file.write_all(b"\nthe end\n").expect("append tail");
    drop(file);

    let text = fx.err("Read", json!({"file_path": fx.p("huge.dat")}));
    assert!(text.contains("offset"), "{text}");
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("huge.dat"), "offset": 2000, "limit": 1}),
    );
    assert!(
        text.starts_with("2000\theader line 2000\n\n(Showing lines 2000-2000;"),
        "{text}"
    );
    assert!(text.ends_with("offset 2001.)"), "{text}");
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("huge.dat"), "offset": 2002, "limit": 5}),
    );
    assert_eq!(text, "2002\tthe end");
    // The 300 MB line of NULs itself is cut, not loaded.
    let text = fx.ok(
        "Read",
        json!({"file_path": fx.p("huge.dat"), "offset": 2001, "limit": 1}),
    );
    assert!(
        text.contains("line cut") && text.contains(&gap.to_string()),
        "{}",
        tail(&text, 120)
    );
}

// ---------------------------------------------------------------------------------------
// Write
// ---------------------------------------------------------------------------------------

#[test]
fn write_creates_a_new_file_without_a_read() {
    let fx = Fixture::new();
    let text = fx.ok(
        "Write",
        json!({"file_path": fx.p("new.txt"), "content": "hello\n"}),
    );
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p("new.txt"))
    );
    assert_eq!(text_of(&fx, "new.txt"), "hello\n");
    // Empty content makes an empty file.
    fx.ok(
        "Write",
        json!({"file_path": fx.p("empty.txt"), "content": ""}),
    );
    assert_eq!(fx.read("empty.txt"), b"");
}

#[test]
fn write_relative_path_lands_in_the_workspace() {
    let fx = Fixture::new();
    let text = fx.ok(
        "Write",
        json!({"file_path": "docs/notes.md", "content": "# Notes\n"}),
    );
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p("docs/notes.md"))
    );
    assert_eq!(text_of(&fx, "docs/notes.md"), "# Notes\n");
}

#[test]
fn write_creates_thirty_nested_directories() {
    let fx = Fixture::new();
    let rel: String = (1..=30).map(|i| format!("d{i}/")).collect::<String>() + "leaf.txt";
    let text = fx.ok("Write", json!({"file_path": fx.p(&rel), "content": "deep"}));
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p(&rel))
    );
    assert_eq!(text_of(&fx, &rel), "deep");
    assert_no_temp_files(fx.root());
}

#[test]
fn write_over_an_unread_file_is_refused() {
    let fx = Fixture::new();
    fx.write("keep.txt", "original\n");
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("keep.txt"), "content": "clobbered"}),
    );
    assert_eq!(text, NOT_READ);
    assert_eq!(text_of(&fx, "keep.txt"), "original\n");
    assert_no_temp_files(fx.root());
}

#[test]
fn write_after_read_updates_the_file() {
    let fx = Fixture::new();
    fx.write("conf.toml", "a = 1\n");
    read(&fx, "conf.toml");
    let text = fx.ok(
        "Write",
        json!({"file_path": fx.p("conf.toml"), "content": "a = 2\n"}),
    );
    assert_eq!(
        text,
        format!(
            "The file {} has been updated successfully.",
            fx.p("conf.toml")
        )
    );
    assert_eq!(text_of(&fx, "conf.toml"), "a = 2\n");
    // Our own write counts as a read: writing again needs no new Read.
    fx.ok(
        "Write",
        json!({"file_path": fx.p("conf.toml"), "content": "a = 3\n"}),
    );
    assert_eq!(text_of(&fx, "conf.toml"), "a = 3\n");
    assert_no_temp_files(fx.root());
}

#[test]
fn write_after_an_outside_change_is_refused() {
    let fx = Fixture::new();
    let path = fx.write("shared.txt", "v1\n");
    read(&fx, "shared.txt");
    fs::write(&path, "v2 from the user\n").expect("change");
    touch_elsewhere(&path);
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("shared.txt"), "content": "v3"}),
    );
    assert_modified(&text);
    assert_eq!(text_of(&fx, "shared.txt"), "v2 from the user\n");
    // Reading again clears the way.
    read(&fx, "shared.txt");
    fx.ok(
        "Write",
        json!({"file_path": fx.p("shared.txt"), "content": "v3"}),
    );
    assert_eq!(text_of(&fx, "shared.txt"), "v3");
}

#[test]
fn write_to_a_directory_is_a_clear_error() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.path("out/sub")).expect("mkdir");
    let text = fx.err("Write", json!({"file_path": fx.p("out"), "content": "x"}));
    assert!(
        text.contains("is a directory") && text.contains(&fx.p("out")),
        "{text}"
    );
    assert!(fx.path("out/sub").is_dir());
    assert_no_temp_files(fx.root());
}

#[test]
fn write_below_a_file_is_a_clear_error() {
    let fx = Fixture::new();
    fx.write("plain.txt", "i am a file\n");
    let result = fx.call(
        "Write",
        json!({"file_path": fx.p("plain.txt/child.txt"), "content": "x"}),
    );
    assert!(result.is_error, "{}", result.text);
    assert!(result.text.contains("plain.txt"), "{}", result.text);
    assert_eq!(text_of(&fx, "plain.txt"), "i am a file\n");
    assert_no_temp_files(fx.root());
}

#[test]
fn write_unicode_path_and_content() {
    let fx = Fixture::new();
    let rel = "ñandú/Ελληνικά/🦀 crab.rs";
    let content = "fn main() { println!(\"héllo wörld 🌍 日本\"); }\n";
    let text = fx.ok("Write", json!({"file_path": fx.p(rel), "content": content}));
    assert_eq!(text, format!("File created successfully at: {}", fx.p(rel)));
    assert_eq!(text_of(&fx, rel), content);
    assert_eq!(read(&fx, rel), format!("1\t{}", content.trim_end()));
}

#[test]
fn write_then_edit_needs_no_read_in_between() {
    let fx = Fixture::new();
    fx.ok(
        "Write",
        json!({"file_path": fx.p("w.txt"), "content": "one two\n"}),
    );
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("w.txt"), "old_string": "two", "new_string": "three"}),
    );
    assert_eq!(
        text,
        format!("The file {} has been updated successfully.", fx.p("w.txt"))
    );
    assert_eq!(text_of(&fx, "w.txt"), "one three\n");
}

#[test]
fn writes_leave_no_temporary_files_after_success_or_failure() {
    let fx = Fixture::new();
    fx.ok(
        "Write",
        json!({"file_path": fx.p("a/b.txt"), "content": "1"}),
    );
    fx.ok(
        "Write",
        json!({"file_path": fx.p("a/b.txt"), "content": "2"}),
    );
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("a/b.txt"), "old_string": "2", "new_string": "3"}),
    );
    fx.write("a/unread.txt", "u");
    fx.err(
        "Write",
        json!({"file_path": fx.p("a/unread.txt"), "content": "x"}),
    );
    fx.err(
        "Edit",
        json!({"file_path": fx.p("a/b.txt"), "old_string": "zzz", "new_string": "y"}),
    );
    fx.err("Write", json!({"file_path": fx.p("a"), "content": "x"}));
    fx.err(
        "Write",
        json!({"file_path": fx.p("a/b.txt/c.txt"), "content": "x"}),
    );
    assert_no_temp_files(fx.root());
    let mut names: Vec<_> = all_names(fx.root())
        .into_iter()
        .map(|path| {
            path.strip_prefix(fx.root())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["a", "a/b.txt", "a/unread.txt"]);
    assert_eq!(text_of(&fx, "a/b.txt"), "3");
}

// ---------------------------------------------------------------------------------------
// Edit
// ---------------------------------------------------------------------------------------

#[test]
fn edit_without_a_read_is_refused() {
    let fx = Fixture::new();
    fx.write("code.rs", "let x = 1;\n");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("code.rs"), "old_string": "1", "new_string": "2"}),
    );
    assert_eq!(text, NOT_READ);
    assert_eq!(text_of(&fx, "code.rs"), "let x = 1;\n");
}

#[test]
fn edit_after_read_replaces_the_unique_match() {
    let fx = Fixture::new();
    fx.write("code.rs", "fn a() {}\nfn b() {}\n");
    read(&fx, "code.rs");
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("code.rs"), "old_string": "fn b() {}", "new_string": "fn b() { a() }"}),
    );
    assert_eq!(
        text,
        format!(
            "The file {} has been updated successfully.",
            fx.p("code.rs")
        )
    );
    assert_eq!(text_of(&fx, "code.rs"), "fn a() {}\nfn b() { a() }\n");
    // A second edit needs no new Read: the plugin recorded its own write.
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("code.rs"), "old_string": "fn a() {}\n", "new_string": ""}),
    );
    assert_eq!(text_of(&fx, "code.rs"), "fn b() { a() }\n");
}

#[test]
fn edit_partial_read_is_enough() {
    let fx = Fixture::new();
    let body: String = (1..=100).map(|i| format!("row {i}\n")).collect();
    fx.write("rows.txt", &body);
    fx.ok(
        "Read",
        json!({"file_path": fx.p("rows.txt"), "offset": 50, "limit": 2}),
    );
    fx.ok("Edit", json!({"file_path": fx.p("rows.txt"), "old_string": "row 50\n", "new_string": "row fifty\n"}));
    assert!(text_of(&fx, "rows.txt").contains("row 49\nrow fifty\nrow 51\n"));
}

#[test]
fn edit_replace_all_changes_every_occurrence() {
    let fx = Fixture::new();
    fx.write("vars.py", "foo = 1\nprint(foo)\nfoo += foo\n");
    read(&fx, "vars.py");
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("vars.py"), "old_string": "foo", "new_string": "bar", "replace_all": true}),
    );
    assert_eq!(
        text,
        format!(
            "The file {} has been updated. All occurrences were successfully replaced.",
            fx.p("vars.py")
        )
    );
    assert_eq!(text_of(&fx, "vars.py"), "bar = 1\nprint(bar)\nbar += bar\n");
}

#[test]
fn edit_not_found_names_the_string() {
    let fx = Fixture::new();
    fx.write("a.txt", "hello world\n");
    read(&fx, "a.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "Hello\nWorld", "new_string": "x"}),
    );
    assert_eq!(
        text,
        "<tool_use_error>String to replace not found in file.\nString: Hello\nWorld</tool_use_error>"
    );
    assert_eq!(text_of(&fx, "a.txt"), "hello world\n");
}

#[test]
fn edit_several_matches_without_replace_all_is_refused() {
    let fx = Fixture::new();
    fx.write("a.txt", "x = 1\nx = 1\nx = 1\n");
    read(&fx, "a.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "x = 1", "new_string": "x = 2"}),
    );
    assert!(
        text.starts_with("<tool_use_error>Found 3 matches of the string to replace"),
        "{text}"
    );
    assert!(text.contains("replace_all is false"), "{text}");
    assert!(text.contains("set replace_all to true"), "{text}");
    assert!(text.contains("context"), "{text}");
    assert!(text.ends_with("\nString: x = 1</tool_use_error>"), "{text}");
    assert_eq!(text_of(&fx, "a.txt"), "x = 1\nx = 1\nx = 1\n");
    // With replace_all explicitly false, the same.
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "x = 1", "new_string": "x = 2", "replace_all": false}),
    );
    assert!(
        text.starts_with("<tool_use_error>Found 3 matches"),
        "{text}"
    );
}

#[test]
fn edit_identical_strings_are_refused() {
    let fx = Fixture::new();
    fx.write("a.txt", "same\n");
    read(&fx, "a.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "same", "new_string": "same"}),
    );
    assert!(
        text.starts_with("<tool_use_error>No changes to make: "),
        "{text}"
    );
    assert!(text.ends_with("</tool_use_error>"), "{text}");
}

#[test]
fn edit_after_an_outside_change_is_refused() {
    let fx = Fixture::new();
    let path = fx.write("a.txt", "before\n");
    read(&fx, "a.txt");
    touch_elsewhere(&path);
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "before", "new_string": "after"}),
    );
    assert_modified(&text);
    assert_eq!(text_of(&fx, "a.txt"), "before\n");
    read(&fx, "a.txt");
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "before", "new_string": "after"}),
    );
    assert_eq!(text_of(&fx, "a.txt"), "after\n");
}

#[test]
fn edit_change_in_size_without_mtime_change_is_caught() {
    let fx = Fixture::new();
    let path = fx.write("a.txt", "short\n");
    let mtime = fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .expect("mtime");
    read(&fx, "a.txt");
    fs::write(&path, "much longer now\n").expect("rewrite");
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(mtime))
        .expect("mtime back");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "much", "new_string": "very"}),
    );
    assert_modified(&text);
}

#[test]
fn edit_crlf_file_round_trips_with_its_line_endings() {
    let fx = Fixture::new();
    fx.write("win.txt", "one\r\ntwo\r\nthree\r\n");
    assert_eq!(read(&fx, "win.txt"), "1\tone\n2\ttwo\n3\tthree");
    fx.ok("Edit", json!({"file_path": fx.p("win.txt"), "old_string": "one\ntwo", "new_string": "uno\ndos\ndos y medio"}));
    assert_eq!(
        fx.read("win.txt"),
        b"uno\r\ndos\r\ndos y medio\r\nthree\r\n"
    );
    // old_string given with CRLF works as well.
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("win.txt"), "old_string": "three\r\n", "new_string": "tres\r\n"}),
    );
    assert_eq!(fx.read("win.txt"), b"uno\r\ndos\r\ndos y medio\r\ntres\r\n");
}

#[test]
fn edit_matches_curly_quotes_with_straight_ones() {
    let fx = Fixture::new();
    fx.write("prose.md", "Él dijo “hola” y ‘adiós’ — ok\n");
    read(&fx, "prose.md");
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("prose.md"), "old_string": "\"hola\" y 'adiós'", "new_string": "HOLA/ADIÓS"}),
    );
    assert_eq!(text_of(&fx, "prose.md"), "Él dijo HOLA/ADIÓS — ok\n");
    // And the other way round: curly in old_string, straight in the file.
    fx.write("code.py", "print(\"hi\")  # it's\n");
    read(&fx, "code.py");
    fx.ok("Edit", json!({"file_path": fx.p("code.py"), "old_string": "print(“hi”)", "new_string": "print('bye')"}));
    assert_eq!(text_of(&fx, "code.py"), "print('bye')  # it's\n");
    // Several curly matches count as several.
    fx.write("q.txt", "‘a’ then ‘a’ end\n");
    read(&fx, "q.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("q.txt"), "old_string": "'a'", "new_string": "b"}),
    );
    assert!(
        text.starts_with("<tool_use_error>Found 2 matches"),
        "{text}"
    );
    fx.ok("Edit", json!({"file_path": fx.p("q.txt"), "old_string": "'a'", "new_string": "b", "replace_all": true}));
    assert_eq!(text_of(&fx, "q.txt"), "b then b end\n");
}

#[test]
fn edit_empty_old_string_creates_a_missing_file() {
    let fx = Fixture::new();
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("fresh/dir/new.rs"), "old_string": "", "new_string": "fn main() {}\n"}),
    );
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p("fresh/dir/new.rs"))
    );
    assert_eq!(text_of(&fx, "fresh/dir/new.rs"), "fn main() {}\n");
    // And the created file can be edited at once.
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("fresh/dir/new.rs"), "old_string": "{}", "new_string": "{ }"}),
    );
    assert_eq!(text_of(&fx, "fresh/dir/new.rs"), "fn main() { }\n");
}

#[test]
fn edit_empty_old_string_fills_an_empty_file() {
    let fx = Fixture::new();
    fx.write("empty.txt", "");
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("empty.txt"), "old_string": "", "new_string": "content\n"}),
    );
    assert_eq!(
        text,
        format!(
            "The file {} has been updated successfully.",
            fx.p("empty.txt")
        )
    );
    assert_eq!(text_of(&fx, "empty.txt"), "content\n");
}

#[test]
fn edit_empty_old_string_on_a_non_empty_file_is_refused() {
    let fx = Fixture::new();
    fx.write("full.txt", "data\n");
    read(&fx, "full.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("full.txt"), "old_string": "", "new_string": "x"}),
    );
    assert_eq!(
        text,
        "<tool_use_error>Cannot create new file - file already exists.</tool_use_error>"
    );
    assert_eq!(text_of(&fx, "full.txt"), "data\n");
}

#[test]
fn edit_replacement_text_is_literal() {
    let fx = Fixture::new();
    fx.write("a.txt", "price: X\n");
    read(&fx, "a.txt");
    let literal = "$& $1 $$ ${name} \\0 \\n";
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("a.txt"), "old_string": "X", "new_string": literal}),
    );
    assert_eq!(text_of(&fx, "a.txt"), format!("price: {literal}\n"));
    // Regex-looking old strings are literal too.
    fx.write("b.txt", "a.b a+b\n");
    read(&fx, "b.txt");
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("b.txt"), "old_string": "a+b", "new_string": "sum"}),
    );
    assert_eq!(text_of(&fx, "b.txt"), "a.b sum\n");
}

#[test]
fn edit_refuses_non_utf8_files() {
    let fx = Fixture::new();
    fx.write("latin1.txt", b"caf\xe9\n");
    read(&fx, "latin1.txt");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("latin1.txt"), "old_string": "caf", "new_string": "bar"}),
    );
    assert!(text.contains("UTF-8"), "{text}");
    assert_eq!(fx.read("latin1.txt"), b"caf\xe9\n");
}

#[test]
fn edit_missing_file_and_directory() {
    let fx = Fixture::new();
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("ghost.txt"), "old_string": "a", "new_string": "b"}),
    );
    assert_eq!(text, missing_text(&fx));
    assert!(!fx.path("ghost.txt").exists());
    fs::create_dir(fx.path("dir")).expect("mkdir");
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("dir"), "old_string": "a", "new_string": "b"}),
    );
    assert!(text.contains("is a directory"), "{text}");
}

#[test]
fn edit_unicode_content_and_path() {
    let fx = Fixture::new();
    let rel = "日本/ファイル 🚀.txt";
    fx.write(rel, "emoji: 😀😀 end\nκείμενο\n");
    read(&fx, rel);
    fx.ok(
        "Edit",
        json!({"file_path": fx.p(rel), "old_string": "😀😀", "new_string": "🎉"}),
    );
    fx.ok(
        "Edit",
        json!({"file_path": fx.p(rel), "old_string": "κείμενο", "new_string": "текст"}),
    );
    assert_eq!(text_of(&fx, rel), "emoji: 🎉 end\nтекст\n");
}

// ---------------------------------------------------------------------------------------
// Symlinks and hard links inside the workspace
// ---------------------------------------------------------------------------------------

#[test]
fn edit_through_an_inside_symlink_changes_the_target_and_keeps_the_link() {
    let fx = Fixture::new();
    fx.write("real/config.yml", "mode: a\n");
    std::os::unix::fs::symlink("real/config.yml", fx.path("link.yml")).expect("symlink");
    assert_eq!(read(&fx, "link.yml"), "1\tmode: a");
    let text = fx.ok(
        "Edit",
        json!({"file_path": fx.p("link.yml"), "old_string": "a", "new_string": "b"}),
    );
    assert_eq!(
        text,
        format!(
            "The file {} has been updated successfully.",
            fx.p("link.yml")
        )
    );
    assert!(
        fs::symlink_metadata(fx.path("link.yml"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(text_of(&fx, "real/config.yml"), "mode: b\n");
    // The link and its target are one file for read-before-write.
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("real/config.yml"), "old_string": "b", "new_string": "c"}),
    );
    fx.ok(
        "Write",
        json!({"file_path": fx.p("link.yml"), "content": "mode: d\n"}),
    );
    assert!(
        fs::symlink_metadata(fx.path("link.yml"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(text_of(&fx, "real/config.yml"), "mode: d\n");
}

#[test]
fn relative_directory_symlinks_inside_the_workspace_are_followed() {
    let fx = Fixture::new();
    fx.write("real/keep.txt", "k\n");
    std::os::unix::fs::symlink("real", fx.path("alias")).expect("symlink");
    fx.write("sub/placeholder", "");
    std::os::unix::fs::symlink("../real/keep.txt", fx.path("sub/up.txt")).expect("symlink");
    let text = fx.ok(
        "Write",
        json!({"file_path": fx.p("alias/new.txt"), "content": "via alias\n"}),
    );
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p("alias/new.txt"))
    );
    assert_eq!(text_of(&fx, "real/new.txt"), "via alias\n");
    assert_eq!(read(&fx, "sub/up.txt"), "1\tk");
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("alias/keep.txt"), "old_string": "k", "new_string": "kept"}),
    );
    assert_eq!(text_of(&fx, "real/keep.txt"), "kept\n");
    assert!(
        fs::symlink_metadata(fx.path("sub/up.txt"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_no_temp_files(fx.root());
}

/// WASI (cap-std) neither follows nor reveals absolute symlink targets, even ones that
/// point inside the workspace: such links are refused with an explanation and a way out.
#[test]
fn absolute_symlinks_are_not_followed_even_inside_the_workspace() {
    let fx = Fixture::new();
    fx.write("target.txt", "inside\n");
    std::os::unix::fs::symlink(fx.path("target.txt"), fx.path("abs.txt")).expect("symlink");
    let text = fx.err("Read", json!({"file_path": fx.p("abs.txt")}));
    assert!(
        text.contains("absolute target") && text.contains("ls -l"),
        "{text}"
    );
    assert_outside(&fx, &text);
    fx.err(
        "Write",
        json!({"file_path": fx.p("abs.txt"), "content": "x"}),
    );
    assert!(
        fs::symlink_metadata(fx.path("abs.txt"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(text_of(&fx, "target.txt"), "inside\n");
}

#[test]
fn symlink_loops_are_a_clear_error() {
    let fx = Fixture::new();
    std::os::unix::fs::symlink("b", fx.path("a")).expect("symlink");
    std::os::unix::fs::symlink("a", fx.path("b")).expect("symlink");
    let text = fx.err("Read", json!({"file_path": fx.p("a")}));
    assert!(text.contains("symlinks") && text.contains("loop"), "{text}");
    let text = fx.err("Write", json!({"file_path": fx.p("a"), "content": "x"}));
    assert!(text.contains("loop"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Leaving the workspace
// ---------------------------------------------------------------------------------------

#[test]
fn dot_dot_paths_are_refused() {
    let fx = Fixture::new();
    let outside = Outside::new();
    let before = outside.names();
    fx.write("sub/a.txt", "a");
    for path in [
        format!("{}/../escape.txt", fx.root().display()),
        format!("{}/sub/../../escape.txt", fx.root().display()),
        "../escape.txt".to_string(),
        "sub/../../../../etc/passwd".to_string(),
    ] {
        assert_outside(&fx, &fx.err("Read", json!({"file_path": path})));
        assert_outside(
            &fx,
            &fx.err("Write", json!({"file_path": path, "content": "x"})),
        );
        assert_outside(
            &fx,
            &fx.err(
                "Edit",
                json!({"file_path": path, "old_string": "", "new_string": "x"}),
            ),
        );
    }
    assert!(
        !fx.root()
            .parent()
            .expect("parent")
            .join("escape.txt")
            .exists()
    );
    assert_eq!(outside.names(), before);
}

#[test]
fn absolute_paths_elsewhere_are_refused_and_untouched() {
    let fx = Fixture::new();
    let outside = Outside::new();
    let secret = outside.write("secret.txt", "top secret\n");
    let secret_path = secret.display().to_string();
    let new_path = outside.path("created.txt").display().to_string();

    assert_outside(&fx, &fx.err("Read", json!({"file_path": secret_path})));
    assert_outside(
        &fx,
        &fx.err(
            "Write",
            json!({"file_path": secret_path, "content": "pwned"}),
        ),
    );
    assert_outside(
        &fx,
        &fx.err("Write", json!({"file_path": new_path, "content": "pwned"})),
    );
    assert_outside(
        &fx,
        &fx.err(
            "Edit",
            json!({"file_path": secret_path, "old_string": "top", "new_string": "no"}),
        ),
    );
    assert_outside(
        &fx,
        &fx.err(
            "Edit",
            json!({"file_path": new_path, "old_string": "", "new_string": "x"}),
        ),
    );
    assert_eq!(fs::read_to_string(&secret).expect("secret"), "top secret\n");
    assert_eq!(outside.names(), vec![secret]);
    // A sibling directory whose name starts like the workspace's is outside too.
    let sibling = format!("{}-evil/x.txt", fx.root().display());
    assert_outside(
        &fx,
        &fx.err("Write", json!({"file_path": sibling, "content": "x"})),
    );
    assert!(!Path::new(&sibling).exists());
}

#[test]
fn proc_self_environ_is_refused() {
    let fx = Fixture::new();
    let text = fx.err("Read", json!({"file_path": "/proc/self/environ"}));
    assert_outside(&fx, &text);
    let text = fx.err("Read", json!({"file_path": "/etc/passwd"}));
    assert_outside(&fx, &text);
}

#[test]
fn symlink_to_an_outside_file_is_refused() {
    let fx = Fixture::new();
    let outside = Outside::new();
    let secret = outside.write("secret.txt", "top secret\n");
    std::os::unix::fs::symlink(&secret, fx.path("abs-link")).expect("symlink");
    // A relative link climbing out works the same way.
    let relative = pathdiff(&secret, fx.root());
    std::os::unix::fs::symlink(&relative, fx.path("rel-link")).expect("symlink");
    for link in ["abs-link", "rel-link"] {
        assert_outside(&fx, &fx.err("Read", json!({"file_path": fx.p(link)})));
        assert_outside(
            &fx,
            &fx.err(
                "Write",
                json!({"file_path": fx.p(link), "content": "pwned"}),
            ),
        );
        assert_outside(
            &fx,
            &fx.err(
                "Edit",
                json!({"file_path": fx.p(link), "old_string": "top", "new_string": "no"}),
            ),
        );
        assert_outside(
            &fx,
            &fx.err(
                "Edit",
                json!({"file_path": fx.p(link), "old_string": "", "new_string": "x"}),
            ),
        );
        // The link is still a link: nothing replaced it.
        assert!(
            fs::symlink_metadata(fx.path(link))
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(fs::read_to_string(&secret).expect("secret"), "top secret\n");
    assert_eq!(outside.names(), vec![secret]);
}

#[test]
fn symlink_to_an_outside_directory_is_refused() {
    let fx = Fixture::new();
    let outside = Outside::new();
    let secret = outside.write("secret.txt", "top secret\n");
    std::os::unix::fs::symlink(&outside.root, fx.path("out")).expect("symlink");
    fx.write("inner/keep.txt", "k");
    std::os::unix::fs::symlink(&outside.root, fx.path("inner/deeper")).expect("symlink");
    for dir in ["out", "inner/deeper", "inner/../out"] {
        let file = fx.p(&format!("{dir}/secret.txt"));
        let fresh = fx.p(&format!("{dir}/new.txt"));
        assert_outside(&fx, &fx.err("Read", json!({"file_path": file})));
        assert_outside(
            &fx,
            &fx.err("Write", json!({"file_path": file, "content": "pwned"})),
        );
        assert_outside(
            &fx,
            &fx.err("Write", json!({"file_path": fresh, "content": "pwned"})),
        );
        assert_outside(
            &fx,
            &fx.err(
                "Edit",
                json!({"file_path": file, "old_string": "top", "new_string": "no"}),
            ),
        );
        assert_outside(
            &fx,
            &fx.err(
                "Edit",
                json!({"file_path": fresh, "old_string": "", "new_string": "x"}),
            ),
        );
        assert_outside(&fx, &fx.err("Read", json!({"file_path": fx.p(dir)})));
    }
    assert_eq!(fs::read_to_string(&secret).expect("secret"), "top secret\n");
    assert_eq!(outside.names(), vec![secret]);
}

/// A hard link is not a way out the sandbox can see: it is a directory entry inside the
/// workspace naming the same inode as a file elsewhere, so its contents are the
/// workspace's content and Read shows them (whoever can make hard links into the workspace
/// can also copy the file in). Writes, though, replace the workspace's entry atomically
/// (temp file + rename), so they break the link and never change the file elsewhere.
#[test]
fn hard_link_to_an_outside_file_is_workspace_content_but_writes_do_not_reach_out() {
    let fx = Fixture::new();
    let outside = Outside::new();
    let secret = outside.write("secret.txt", "shared inode\n");
    if let Err(error) = fs::hard_link(&secret, fx.path("hard.txt")) {
        // Different file systems (EXDEV): there is nothing to test on this machine.
        eprintln!("skipping: cannot hard-link across these directories: {error}");
        return;
    }
    assert_eq!(read(&fx, "hard.txt"), "1\tshared inode");
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("hard.txt"), "old_string": "shared", "new_string": "own"}),
    );
    assert_eq!(text_of(&fx, "hard.txt"), "own inode\n");
    assert_eq!(
        fs::read_to_string(&secret).expect("secret"),
        "shared inode\n"
    );
    fx.ok(
        "Write",
        json!({"file_path": fx.p("hard.txt"), "content": "rewritten\n"}),
    );
    assert_eq!(
        fs::read_to_string(&secret).expect("secret"),
        "shared inode\n"
    );
}

#[test]
fn very_long_paths_are_clear_errors() {
    let fx = Fixture::new();
    let long = format!("{}/{}", fx.root().display(), "a".repeat(5000));
    for tool_input in [
        ("Read", json!({"file_path": long})),
        ("Write", json!({"file_path": long, "content": "x"})),
        (
            "Edit",
            json!({"file_path": long, "old_string": "", "new_string": "x"}),
        ),
    ] {
        let text = fx.err(tool_input.0, tool_input.1);
        assert!(text.contains("too long"), "{text}");
        assert!(
            text.len() < 1000,
            "the error repeats the whole path: {} bytes",
            text.len()
        );
    }
    // Many short components adding up to more than the system allows.
    let deep = format!("{}/{}f.txt", fx.root().display(), "abcdefghij/".repeat(500));
    let text = fx.err("Write", json!({"file_path": deep, "content": "x"}));
    assert!(text.contains("too long"), "{text}");
    // One name over 255 bytes.
    let wide = fx.p(&format!("{}.txt", "ß".repeat(200)));
    let text = fx.err("Write", json!({"file_path": wide, "content": "x"}));
    assert!(
        text.contains("too long") || text.contains("longer"),
        "{text}"
    );
    assert_no_temp_files(fx.root());
    assert!(all_names(fx.root()).is_empty());
}

#[test]
fn names_near_the_limit_still_work() {
    let fx = Fixture::new();
    // 250 bytes: the temporary file name must not push past 255.
    let name = format!("{}.txt", "n".repeat(246));
    let text = fx.ok(
        "Write",
        json!({"file_path": fx.p(&name), "content": "fits"}),
    );
    assert_eq!(
        text,
        format!("File created successfully at: {}", fx.p(&name))
    );
    fx.ok(
        "Write",
        json!({"file_path": fx.p(&name), "content": "fits again"}),
    );
    assert_eq!(text_of(&fx, &name), "fits again");
    assert_no_temp_files(fx.root());
}

#[test]
fn mtime_bookkeeping_survives_quick_successive_writes() {
    let fx = Fixture::new();
    fx.ok("Write", json!({"file_path": fx.p("c.txt"), "content": "0"}));
    for i in 1..=20 {
        fx.ok("Edit", json!({"file_path": fx.p("c.txt"), "old_string": (i - 1).to_string(), "new_string": i.to_string()}));
    }
    assert_eq!(text_of(&fx, "c.txt"), "20");
}

/// `target` relative to the directory `from` (both canonical), as `../..` steps.
fn pathdiff(target: &Path, from: &Path) -> PathBuf {
    let target: Vec<_> = target.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = target.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &target[common..] {
        out.push(part.as_os_str());
    }
    out
}
