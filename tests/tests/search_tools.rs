//! End-to-end tests of the `search` plugin's `Glob` and `Grep` tools, through the real
//! component and host runtime.
//!
//! Modification times are set explicitly wherever results are ordered by them, so every
//! expected text is exact.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_host_tests::Fixture;
use serde_json::json;

/// Sets the modification time of `rel` to a fixed instant, `secs` seconds after a base.
fn set_mtime(fx: &Fixture, rel: &str, secs: u64) {
    let file = File::options()
        .write(true)
        .open(fx.path(rel))
        .expect("open for set_modified");
    let time: SystemTime = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    file.set_modified(time).expect("set mtime");
}

/// Writes `rel` with `contents` and the given modification time.
fn write_at(fx: &Fixture, rel: &str, contents: &str, secs: u64) {
    fx.write(rel, contents);
    set_mtime(fx, rel, secs);
}

/// Marks the workspace as a git repository (so `.gitignore` applies, as in ripgrep).
fn make_git_repo(fx: &Fixture) {
    fx.write(".git/HEAD", "ref: refs/heads/main\n");
    fx.write(".git/config", "[core]\n\tmatch = everything\n");
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create symlink");
}

// ---------------------------------------------------------------------------------------
// Glob
// ---------------------------------------------------------------------------------------

#[test]
fn glob_lists_matches_newest_first() {
    let fx = Fixture::new();
    write_at(&fx, "a.rs", "", 10);
    write_at(&fx, "src/b.rs", "", 30);
    write_at(&fx, "src/c.txt", "", 40);
    write_at(&fx, "src/deep/d.rs", "", 20);
    let out = fx.ok("Glob", json!({"pattern": "**/*.rs"}));
    assert_eq!(out, "src/b.rs\nsrc/deep/d.rs\na.rs");
}

#[test]
fn glob_ties_in_mtime_are_ordered_by_path() {
    let fx = Fixture::new();
    write_at(&fx, "b.txt", "", 5);
    write_at(&fx, "a.txt", "", 5);
    write_at(&fx, "c.txt", "", 1);
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "*.txt"})),
        "a.txt\nb.txt\nc.txt"
    );
}

#[test]
fn glob_star_stays_in_one_directory() {
    let fx = Fixture::new();
    write_at(&fx, "top.rs", "", 1);
    write_at(&fx, "sub/inner.rs", "", 2);
    assert_eq!(fx.ok("Glob", json!({"pattern": "*.rs"})), "top.rs");
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "sub/*.rs"})),
        "sub/inner.rs"
    );
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "**/*.rs"})),
        "sub/inner.rs\ntop.rs"
    );
    assert_eq!(fx.ok("Glob", json!({"pattern": "*/*.rs"})), "sub/inner.rs");
}

#[test]
fn glob_supports_braces_classes_and_question_marks() {
    let fx = Fixture::new();
    write_at(&fx, "web/app.ts", "", 3);
    write_at(&fx, "web/view.tsx", "", 2);
    write_at(&fx, "web/style.css", "", 1);
    write_at(&fx, "v1.txt", "", 5);
    write_at(&fx, "v2.txt", "", 4);
    write_at(&fx, "v10.txt", "", 6);
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "web/*.{ts,tsx}"})),
        "web/app.ts\nweb/view.tsx"
    );
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "v?.txt"})),
        "v1.txt\nv2.txt"
    );
    assert_eq!(fx.ok("Glob", json!({"pattern": "v[2-9].txt"})), "v2.txt");
}

#[test]
fn glob_paths_are_relative_to_the_search_directory() {
    let fx = Fixture::new();
    write_at(&fx, "src/lib.rs", "", 2);
    write_at(&fx, "src/util/mod.rs", "", 1);
    write_at(&fx, "other.rs", "", 3);
    let out = fx.ok("Glob", json!({"pattern": "**/*.rs", "path": fx.p("src")}));
    assert_eq!(out, "lib.rs\nutil/mod.rs");
    // A relative `path` is taken from the workspace root.
    let out = fx.ok("Glob", json!({"pattern": "*.rs", "path": "src/util"}));
    assert_eq!(out, "mod.rs");
}

#[test]
fn glob_accepts_an_absolute_pattern_inside_the_search_directory() {
    let fx = Fixture::new();
    write_at(&fx, "src/main.rs", "", 1);
    write_at(&fx, "src/x/y.rs", "", 2);
    let pattern = format!("{}/src/**/*.rs", fx.root().display());
    assert_eq!(
        fx.ok("Glob", json!({"pattern": pattern})),
        "src/x/y.rs\nsrc/main.rs"
    );
    let pattern = format!("{}/src/*.rs", fx.root().display());
    let out = fx.ok("Glob", json!({"pattern": pattern, "path": fx.p("src")}));
    assert_eq!(out, "main.rs");
}

#[test]
fn glob_includes_hidden_and_gitignored_files_but_not_symlinks() {
    let fx = Fixture::new();
    make_git_repo(&fx);
    write_at(&fx, ".gitignore", "ignored/\n*.log\n", 1);
    write_at(&fx, "ignored/kept.txt", "", 2);
    write_at(&fx, "app.log", "", 3);
    write_at(&fx, ".hidden/secret.txt", "", 4);
    write_at(&fx, ".env", "", 5);
    write_at(&fx, "plain.txt", "", 6);
    symlink(&fx.path("plain.txt"), &fx.path("link.txt"));
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "**/*.txt"})),
        "plain.txt\n.hidden/secret.txt\nignored/kept.txt"
    );
    assert_eq!(fx.ok("Glob", json!({"pattern": "*.log"})), "app.log");
    assert_eq!(fx.ok("Glob", json!({"pattern": ".env"})), ".env");
}

#[test]
fn glob_without_matches_says_no_files_found() {
    let fx = Fixture::new();
    fx.write("a.txt", "x");
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "**/*.nothing"})),
        "No files found"
    );
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "missing-dir/**/*"})),
        "No files found"
    );
}

#[test]
fn glob_caps_the_list_at_100_newest_with_a_note() {
    let fx = Fixture::new();
    for i in 0..150u64 {
        write_at(&fx, &format!("many/f{i:03}.txt"), "", i);
    }
    let out = fx.ok("Glob", json!({"pattern": "many/*.txt"}));
    let (list, note) = out.split_once("\n\n").expect("a note after the list");
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[0], "many/f149.txt");
    assert_eq!(lines[99], "many/f050.txt");
    assert!(note.contains("100") && note.contains("150"), "{note}");
    assert!(note.contains("more specific pattern"), "{note}");
}

#[test]
fn glob_handles_unicode_names_and_deep_trees() {
    let fx = Fixture::new();
    write_at(&fx, "données/café.txt", "", 2);
    write_at(&fx, "文档/说明.md", "", 1);
    let deep: String = (0..50).map(|i| format!("d{i}/")).collect();
    write_at(&fx, &format!("{deep}bottom.txt"), "", 3);
    let out = fx.ok("Glob", json!({"pattern": "**/*.txt"}));
    assert_eq!(out, format!("{deep}bottom.txt\ndonnées/café.txt"));
    assert_eq!(
        fx.ok("Glob", json!({"pattern": "文档/*.md"})),
        "文档/说明.md"
    );
}

#[test]
fn glob_rejects_a_file_as_search_directory_and_missing_paths() {
    let fx = Fixture::new();
    fx.write("a.txt", "x");
    let err = fx.err("Glob", json!({"pattern": "*", "path": fx.p("a.txt")}));
    assert!(err.contains("not a directory"), "{err}");
    let err = fx.err("Glob", json!({"pattern": "*", "path": fx.p("nope")}));
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains(&fx.root().display().to_string()), "{err}");
}

#[test]
fn glob_reports_invalid_patterns() {
    let fx = Fixture::new();
    let err = fx.err("Glob", json!({"pattern": "src/[a-"}));
    assert!(err.contains("invalid"), "{err}");
    let err = fx.err("Glob", json!({"pattern": "../*"}));
    assert!(err.contains(".."), "{err}");
}

#[test]
fn glob_never_leaves_the_workspace() {
    let fx = Fixture::new();
    let outside = tempfile::tempdir().expect("outside dir");
    std::fs::write(outside.path().join("outside_marker_b71c.txt"), "x").expect("write outside");
    symlink(outside.path(), &fx.path("link"));
    write_at(&fx, "inside.txt", "", 1);
    let root = fx.root().display().to_string();

    let out = fx.ok("Glob", json!({"pattern": "**/*"}));
    assert_eq!(out, "inside.txt");
    let out = fx.ok("Glob", json!({"pattern": "**/*.txt"}));
    assert!(!out.contains("outside_marker_b71c"), "{out}");

    for path in [
        "../".to_string(),
        "/etc".to_string(),
        outside.path().display().to_string(),
    ] {
        let err = fx.err("Glob", json!({"pattern": "**/*", "path": path}));
        assert!(err.contains(&root), "{path}: {err}");
        assert!(!err.contains("outside_marker_b71c"), "{err}");
    }
    let err = fx.err("Glob", json!({"pattern": "**/*", "path": fx.p("link")}));
    assert!(err.contains(&root), "{err}");
    assert!(!err.contains("outside_marker_b71c"), "{err}");
    let err = fx.err(
        "Glob",
        json!({"pattern": format!("{}/*", outside.path().display())}),
    );
    assert!(err.contains("outside the workspace"), "{err}");
    // A pattern through the symlink finds nothing either (the sandbox refuses the link).
    let out = fx.call("Glob", json!({"pattern": "link/*"}));
    assert!(!out.text.contains("outside_marker_b71c"), "{}", out.text);
}

// ---------------------------------------------------------------------------------------
// Grep: modes and options
// ---------------------------------------------------------------------------------------

/// Two text files with "match" on some lines, older one first.
fn two_files(fx: &Fixture) {
    write_at(
        fx,
        "a.txt",
        "one\ntwo match\nthree\nfour\nfive\nsix\nseven match\neight\n",
        10,
    );
    write_at(fx, "b.txt", "x\nmatch y\n", 20);
}

#[test]
fn grep_files_with_matches_is_the_default_newest_first() {
    let fx = Fixture::new();
    two_files(&fx);
    write_at(&fx, "c.txt", "nothing here\n", 30);
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match"})),
        "Found 2 files\nb.txt\na.txt"
    );
    set_mtime(&fx, "a.txt", 40);
    assert_eq!(
        fx.ok(
            "Grep",
            json!({"pattern": "match", "output_mode": "files_with_matches"})
        ),
        "Found 2 files\na.txt\nb.txt"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "seven"})),
        "Found 1 file\na.txt"
    );
}

#[test]
fn grep_content_shows_path_line_and_text() {
    let fx = Fixture::new();
    two_files(&fx);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content"}),
    );
    assert_eq!(
        out,
        "a.txt:2:two match\na.txt:7:seven match\nb.txt:2:match y"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-n": false}),
    );
    assert_eq!(out, "a.txt:two match\na.txt:seven match\nb.txt:match y");
}

#[test]
fn grep_content_context_lines_and_separators() {
    let fx = Fixture::new();
    two_files(&fx);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-C": 1}),
    );
    assert_eq!(
        out,
        "a.txt-1-one\na.txt:2:two match\na.txt-3-three\n--\n\
         a.txt-6-six\na.txt:7:seven match\na.txt-8-eight\n--\n\
         b.txt-1-x\nb.txt:2:match y"
    );
    // `context` is the same as -C.
    let same = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "context": 1}),
    );
    assert_eq!(same, out);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-A": 1}),
    );
    assert_eq!(
        out,
        "a.txt:2:two match\na.txt-3-three\n--\na.txt:7:seven match\na.txt-8-eight\n--\nb.txt:2:match y"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "seven", "output_mode": "content", "-B": 2}),
    );
    assert_eq!(out, "a.txt-5-five\na.txt-6-six\na.txt:7:seven match");
    // Adjacent groups merge without a separator.
    let out = fx.ok(
        "Grep",
        json!({"pattern": "seven", "output_mode": "content", "-B": 5, "-A": 0}),
    );
    assert_eq!(
        out,
        "a.txt-2-two match\na.txt-3-three\na.txt-4-four\na.txt-5-five\na.txt-6-six\na.txt:7:seven match"
    );
    // -A/-B win over -C.
    let out = fx.ok(
        "Grep",
        json!({"pattern": "seven", "output_mode": "content", "-C": 3, "-A": 0, "-B": 1}),
    );
    assert_eq!(out, "a.txt-6-six\na.txt:7:seven match");
}

#[test]
fn grep_count_mode() {
    let fx = Fixture::new();
    two_files(&fx);
    write_at(&fx, "c.txt", "match match match\n", 5);
    let out = fx.ok("Grep", json!({"pattern": "match", "output_mode": "count"}));
    assert_eq!(
        out,
        "a.txt:2\nb.txt:1\nc.txt:1\n\nFound 4 total occurrences across 3 files."
    );
    // With -o every match counts, as `rg --count --only-matching`.
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "count", "-o": true}),
    );
    assert_eq!(
        out,
        "a.txt:2\nb.txt:1\nc.txt:3\n\nFound 6 total occurrences across 3 files."
    );
    let out = fx.ok("Grep", json!({"pattern": "seven", "output_mode": "count"}));
    assert_eq!(out, "a.txt:1\n\nFound 1 total occurrence across 1 file.");
}

#[test]
fn grep_case_insensitive_and_only_matching() {
    let fx = Fixture::new();
    write_at(&fx, "m.txt", "Hello World\nhello there\nHELLO\nbye\n", 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "hello", "output_mode": "content"}),
    );
    assert_eq!(out, "m.txt:2:hello there");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "hello", "output_mode": "content", "-i": true}),
    );
    assert_eq!(
        out,
        "m.txt:1:Hello World\nm.txt:2:hello there\nm.txt:3:HELLO"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "h[a-z]+o", "output_mode": "content", "-i": true, "-o": true}),
    );
    assert_eq!(out, "m.txt:1:Hello\nm.txt:2:hello\nm.txt:3:HELLO");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "o\\b", "output_mode": "content", "-o": true, "-n": false}),
    );
    assert_eq!(out, "m.txt:o\nm.txt:o");
}

#[test]
fn grep_multiline_patterns_span_lines() {
    let fx = Fixture::new();
    write_at(
        &fx,
        "m.rs",
        "fn main() {\n    body();\n}\nfn other() {}\n",
        1,
    );
    let single = fx.ok(
        "Grep",
        json!({"pattern": "main.*body", "output_mode": "content"}),
    );
    assert_eq!(single, "No matches found");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "main.*body", "output_mode": "content", "multiline": true}),
    );
    assert_eq!(out, "m.rs:1:fn main() {\nm.rs:2:    body();");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "\\{\\n\\s+body", "output_mode": "count", "multiline": true}),
    );
    assert_eq!(out, "m.rs:1\n\nFound 1 total occurrence across 1 file.");
    let out = fx.ok("Grep", json!({"pattern": "\\}\\nfn", "multiline": true}));
    assert_eq!(out, "Found 1 file\nm.rs");
}

#[test]
fn grep_line_breaks_in_patterns_need_multiline() {
    let fx = Fixture::new();
    write_at(&fx, "m.txt", "first\nsecond\n", 1);
    let err = fx.err("Grep", json!({"pattern": "first\\nsecond"}));
    assert!(err.contains("rejected"), "{err}");
    assert!(err.contains("multiline: true"), "{err}");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "first\\nsecond", "multiline": true}),
    );
    assert_eq!(out, "Found 1 file\nm.txt");
}

#[test]
fn grep_type_and_glob_filters() {
    let fx = Fixture::new();
    write_at(&fx, "src/a.rs", "match\n", 1);
    write_at(&fx, "src/b.py", "match\n", 2);
    write_at(&fx, "docs/c.md", "match\n", 3);
    write_at(&fx, "d.txt", "match\n", 4);
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "type": "rust"})),
        "Found 1 file\nsrc/a.rs"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "type": "py"})),
        "Found 1 file\nsrc/b.py"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "glob": "*.md"})),
        "Found 1 file\ndocs/c.md"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "glob": "*.{rs,py}"})),
        "Found 2 files\nsrc/b.py\nsrc/a.rs"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "glob": "!*.txt"})),
        "Found 3 files\ndocs/c.md\nsrc/b.py\nsrc/a.rs"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "glob": "src/**"})),
        "Found 2 files\nsrc/b.py\nsrc/a.rs"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "glob": "*.rs *.md"})),
        "Found 2 files\ndocs/c.md\nsrc/a.rs"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match", "type": "go"})),
        "No files found"
    );
}

#[test]
fn grep_unknown_type_lists_valid_types() {
    let fx = Fixture::new();
    fx.write("a.rs", "match");
    let err = fx.err("Grep", json!({"pattern": "match", "type": "nosuchtype"}));
    assert!(err.contains("nosuchtype"), "{err}");
    for known in ["rust", "py", "js"] {
        assert!(err.contains(known), "{err}");
    }
    let err = fx.err("Grep", json!({"pattern": "match", "type": "rs"}));
    assert!(err.contains("rust"), "suggests `rust` for `rs`: {err}");
}

#[test]
fn grep_bad_regex_is_an_error_with_the_parser_message() {
    let fx = Fixture::new();
    fx.write("a.txt", "x");
    let err = fx.err("Grep", json!({"pattern": "foo(bar"}));
    assert!(err.contains("rejected"), "{err}");
    assert!(err.contains("unclosed group"), "{err}");
    let err = fx.err("Grep", json!({"pattern": "a{2,1}"}));
    assert!(err.contains("rejected"), "{err}");
}

#[test]
fn grep_without_matches_is_not_an_error() {
    let fx = Fixture::new();
    two_files(&fx);
    assert_eq!(fx.ok("Grep", json!({"pattern": "zebra"})), "No files found");
    assert_eq!(
        fx.ok(
            "Grep",
            json!({"pattern": "zebra", "output_mode": "content"})
        ),
        "No matches found"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "zebra", "output_mode": "count"})),
        "No matches found"
    );
}

#[test]
fn grep_searches_a_single_file_given_as_path() {
    let fx = Fixture::new();
    two_files(&fx);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "path": fx.p("b.txt"), "output_mode": "content"}),
    );
    assert_eq!(out, "b.txt:2:match y");
    let out = fx.ok("Grep", json!({"pattern": "match", "path": "a.txt"}));
    assert_eq!(out, "Found 1 file\na.txt");
    // Paths stay relative to the workspace root when searching a subdirectory.
    write_at(&fx, "sub/dir/c.txt", "match\n", 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "path": fx.p("sub"), "output_mode": "content"}),
    );
    assert_eq!(out, "sub/dir/c.txt:1:match");
}

// ---------------------------------------------------------------------------------------
// Grep: which files are searched
// ---------------------------------------------------------------------------------------

#[test]
fn grep_honours_gitignore_in_a_repo_and_skips_vcs_dirs_but_not_hidden_files() {
    let fx = Fixture::new();
    make_git_repo(&fx);
    write_at(&fx, ".gitignore", "ignored/\n*.log\n", 1);
    write_at(&fx, "ignored/x.txt", "match\n", 2);
    write_at(&fx, "app.log", "match\n", 3);
    write_at(&fx, "sub/.gitignore", "local.txt\n", 4);
    write_at(&fx, "sub/local.txt", "match\n", 5);
    write_at(&fx, "sub/kept.txt", "match\n", 6);
    write_at(&fx, "sub/deeper/app.log", "match\n", 6);
    write_at(&fx, "sub/ignored/y.txt", "match\n", 6);
    write_at(&fx, ".env", "match\n", 7);
    write_at(&fx, ".config/tool.toml", "match\n", 8);
    write_at(&fx, ".hg/store", "match\n", 9);
    write_at(&fx, "main.txt", "match\n", 10);
    let out = fx.ok("Grep", json!({"pattern": "match"}));
    assert_eq!(
        out,
        "Found 4 files\nmain.txt\n.config/tool.toml\n.env\nsub/kept.txt"
    );
    // Searching a subdirectory: the ignore files above it still apply, as in rg.
    let out = fx.ok("Grep", json!({"pattern": "match", "path": fx.p("sub")}));
    assert_eq!(out, "Found 1 file\nsub/kept.txt");
    // Naming an ignored file directly searches it, as rg does.
    let out = fx.ok("Grep", json!({"pattern": "match", "path": fx.p("app.log")}));
    assert_eq!(out, "Found 1 file\napp.log");
}

#[test]
fn grep_applies_gitignore_only_inside_a_repo_but_always_ignore_files() {
    let fx = Fixture::new();
    write_at(&fx, ".gitignore", "*.log\n", 1);
    write_at(&fx, ".ignore", "*.tmp\n", 2);
    write_at(&fx, ".rgignore", "*.bak\n", 3);
    write_at(&fx, "app.log", "match\n", 4);
    write_at(&fx, "x.tmp", "match\n", 5);
    write_at(&fx, "y.bak", "match\n", 6);
    write_at(&fx, "z.txt", "match\n", 7);
    let out = fx.ok("Grep", json!({"pattern": "match"}));
    assert_eq!(out, "Found 2 files\nz.txt\napp.log");
}

#[test]
fn grep_skips_binary_files() {
    let fx = Fixture::new();
    fx.write("blob.bin", b"match\0\x01\x02\x03 match\n".as_slice());
    set_mtime(&fx, "blob.bin", 2);
    write_at(&fx, "text.txt", "a match\n", 1);
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "match"})),
        "Found 1 file\ntext.txt"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content"}),
    );
    assert_eq!(out, "text.txt:1:a match");
    let out = fx.ok("Grep", json!({"pattern": "match", "output_mode": "count"}));
    assert_eq!(out, "text.txt:1\n\nFound 1 total occurrence across 1 file.");
    // Named directly, the binary file is still not searched, and the result says why.
    let note = "(blob.bin contains binary data (a NUL byte), so it was not searched: Grep skips \
                binary files as ripgrep does.)";
    for (mode, empty) in [
        ("files_with_matches", "No files found"),
        ("content", "No matches found"),
        ("count", "No matches found"),
    ] {
        let out = fx.ok(
            "Grep",
            json!({"pattern": "match", "path": fx.p("blob.bin"), "output_mode": mode}),
        );
        assert_eq!(out, format!("{empty}\n\n{note}"), "{mode}");
    }
}

#[test]
fn grep_handles_unicode_crlf_and_empty_files() {
    let fx = Fixture::new();
    write_at(&fx, "données/café.txt", "привет мир\nhéllo wörld\n", 3);
    write_at(&fx, "crlf.txt", "alpha\r\nbeta end\r\ngamma\r\n", 2);
    write_at(&fx, "empty.txt", "", 1);
    write_at(&fx, "empty2.md", "", 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "wörld", "output_mode": "content"}),
    );
    assert_eq!(out, "données/café.txt:2:héllo wörld");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "ПРИВЕТ", "output_mode": "content", "-i": true}),
    );
    assert_eq!(out, "données/café.txt:1:привет мир");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "\\w+ end$", "output_mode": "content"}),
    );
    assert_eq!(out, "crlf.txt:2:beta end");
    let out = fx.ok(
        "Grep",
        json!({"pattern": "a", "output_mode": "content", "-C": 1, "path": fx.p("crlf.txt")}),
    );
    assert_eq!(
        out,
        "crlf.txt:1:alpha\ncrlf.txt:2:beta end\ncrlf.txt:3:gamma"
    );
    assert_eq!(
        fx.ok("Grep", json!({"pattern": "anything", "glob": "empty*"})),
        "No files found"
    );
}

#[test]
fn grep_finds_files_in_a_deep_tree() {
    let fx = Fixture::new();
    let deep: String = (0..50).map(|i| format!("d{i}/")).collect();
    write_at(&fx, &format!("{deep}bottom.txt"), "deep needle\n", 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "needle", "output_mode": "content"}),
    );
    assert_eq!(out, format!("{deep}bottom.txt:1:deep needle"));
}

// ---------------------------------------------------------------------------------------
// Grep: sizes and paging
// ---------------------------------------------------------------------------------------

#[test]
fn grep_cuts_long_lines_at_500_columns() {
    let fx = Fixture::new();
    let long = format!("{}match", "x".repeat(600));
    let context = "y".repeat(700);
    write_at(
        &fx,
        "long.txt",
        &format!("short match\n{long}\n{context}\n"),
        1,
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-A": 1}),
    );
    assert_eq!(
        out,
        "long.txt:1:short match\nlong.txt:2:[Omitted long matching line]\nlong.txt-3-[Omitted long context line]"
    );
    // As `rg --max-columns 500`: the limit counts the line with its terminator.
    let fits = "z".repeat(494) + "match";
    let too_long = "w".repeat(495) + "match";
    write_at(&fx, "edge.txt", &format!("{fits}\n{too_long}\n"), 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "[zw]match", "path": fx.p("edge.txt"), "output_mode": "content"}),
    );
    assert_eq!(
        out,
        format!("edge.txt:1:{fits}\nedge.txt:2:[Omitted long matching line]")
    );
}

#[test]
fn grep_pages_files_with_head_limit_and_offset() {
    let fx = Fixture::new();
    for i in 1..=5u64 {
        write_at(&fx, &format!("f{i}.txt"), "match\n", i);
    }
    let out = fx.ok("Grep", json!({"pattern": "match", "head_limit": 2}));
    assert_eq!(
        out,
        "Found 5 files\nf5.txt\nf4.txt\n\n(Showing files 1-2 of 5; there are more. Call again with offset: 2 for the next page.)"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "head_limit": 2, "offset": 2}),
    );
    assert_eq!(
        out,
        "Found 5 files\nf3.txt\nf2.txt\n\n(Showing files 3-4 of 5; there are more. Call again with offset: 4 for the next page.)"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "head_limit": 2, "offset": 4}),
    );
    assert_eq!(
        out,
        "Found 5 files\nf1.txt\n\n(Showing files 5-5 of 5: the end of the output.)"
    );
    let out = fx.ok("Grep", json!({"pattern": "match", "offset": 9}));
    assert!(
        out.starts_with("Found 5 files\n\n(offset 9 is past the end"),
        "{out}"
    );
    // head_limit 0 means no limit.
    let out = fx.ok("Grep", json!({"pattern": "match", "head_limit": 0}));
    assert_eq!(out, "Found 5 files\nf5.txt\nf4.txt\nf3.txt\nf2.txt\nf1.txt");
}

#[test]
fn grep_pages_content_and_count_lines() {
    let fx = Fixture::new();
    two_files(&fx);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-C": 1, "head_limit": 4}),
    );
    assert_eq!(
        out,
        "a.txt-1-one\na.txt:2:two match\na.txt-3-three\n--\n\n(Showing output lines 1-4; there are more. Call again with offset: 4 for the next page.)"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-C": 1, "head_limit": 4, "offset": 4}),
    );
    assert_eq!(
        out,
        "a.txt-6-six\na.txt:7:seven match\na.txt-8-eight\n--\n\n(Showing output lines 5-8; there are more. Call again with offset: 8 for the next page.)"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "-C": 1, "offset": 8}),
    );
    assert_eq!(
        out,
        "b.txt-1-x\nb.txt:2:match y\n\n(Showing output lines 9-10: the end of the output.)"
    );
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "count", "head_limit": 1}),
    );
    assert_eq!(
        out,
        "a.txt:2\n\nFound 3 total occurrences across 2 files.\n(Showing files 1-1 of 2; there are more. Call again with offset: 1 for the next page.)"
    );
}

#[test]
fn grep_caps_big_output_and_says_how_to_continue() {
    let fx = Fixture::new();
    let body: String = (1..=5000)
        .map(|i| format!("line {i:05} has a match in it\n"))
        .collect();
    write_at(&fx, "big.txt", &body, 1);
    let out = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content"}),
    );
    assert!(out.len() < 20_500, "output is capped: {} chars", out.len());
    let (lines, note) = out.rsplit_once("\n\n").expect("a note after the lines");
    let shown = lines.lines().count();
    assert!(shown > 400, "{shown} lines shown");
    assert_eq!(
        lines.lines().next(),
        Some("big.txt:1:line 00001 has a match in it")
    );
    assert!(note.contains("20,000 characters"), "{note}");
    assert!(note.contains(&format!("offset: {shown}")), "{note}");
    let next = fx.ok(
        "Grep",
        json!({"pattern": "match", "output_mode": "content", "offset": shown, "head_limit": 1}),
    );
    let expected = format!("big.txt:{n}:line {n:05} has a match in it", n = shown + 1);
    assert_eq!(next.lines().next(), Some(expected.as_str()));

    // files_with_matches is capped the same way.
    for i in 0..1200u64 {
        write_at(
            &fx,
            &format!("many/file_with_a_longish_name_{i:04}.txt"),
            "match\n",
            100 + i,
        );
    }
    let out = fx.ok("Grep", json!({"pattern": "match", "path": fx.p("many")}));
    assert!(out.len() < 20_500, "{}", out.len());
    assert!(
        out.starts_with("Found 1200 files\nmany/file_with_a_longish_name_1199.txt\n"),
        "{out}"
    );
    assert!(out.contains("Call again with offset: "), "{out}");
}

// ---------------------------------------------------------------------------------------
// Grep: errors and the sandbox
// ---------------------------------------------------------------------------------------

#[test]
fn grep_missing_path_names_the_workspace() {
    let fx = Fixture::new();
    let err = fx.err(
        "Grep",
        json!({"pattern": "x", "path": fx.p("nope/none.txt")}),
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains(&fx.root().display().to_string()), "{err}");
}

#[test]
fn grep_never_searches_outside_the_workspace() {
    let fx = Fixture::new();
    let outside = tempfile::tempdir().expect("outside dir");
    let marker = "OUTSIDE_MARKER_5d2e9a";
    std::fs::write(outside.path().join("secret.txt"), format!("{marker}\n"))
        .expect("write outside");
    symlink(outside.path(), &fx.path("link"));
    symlink(
        &outside.path().join("secret.txt"),
        &fx.path("secret-link.txt"),
    );
    write_at(&fx, "inside.txt", "nothing\n", 1);
    let root = fx.root().display().to_string();

    for mode in ["files_with_matches", "content", "count"] {
        let out = fx.ok(
            "Grep",
            json!({"pattern": "OUTSIDE_MARKER", "output_mode": mode}),
        );
        assert!(!out.contains(marker), "{mode}: {out}");
        assert!(out.starts_with("No "), "{mode}: {out}");
    }
    let outside_path = outside.path().display().to_string();
    for path in [
        "../".to_string(),
        "/etc".to_string(),
        outside_path.clone(),
        format!("{outside_path}/secret.txt"),
        fx.p("link"),
        fx.p("link/secret.txt"),
        fx.p("secret-link.txt"),
    ] {
        let result = fx.call(
            "Grep",
            json!({"pattern": "OUTSIDE_MARKER", "path": path, "output_mode": "content"}),
        );
        assert!(result.is_error, "{path}: {}", result.text);
        assert!(result.text.contains(&root), "{path}: {}", result.text);
        assert!(!result.text.contains(marker), "{path}: {}", result.text);
    }
}
