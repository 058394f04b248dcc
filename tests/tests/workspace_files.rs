//! The workspace operations a front end offers (`agent_host::session::files`), attacked
//! directly: uploads that try to land outside `.agent-host/uploads/` or overwrite
//! something, downloads that try to leave the workspace, and a `/diff` on a repository
//! whose config names programs for git to run. The model controls the workspace in each
//! case, so each test plants what a hostile command could.

use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_host::exec::{CommandRequest, CommandRunner, Confinement, ExecSettings};
use agent_host::session::files::{
    DiffError, DownloadError, MAX_DOWNLOAD_BYTES, MAX_UPLOAD_BYTES, UploadError, open_for_download,
    save_upload, workspace_diff,
};

/// A workspace inside a temporary directory of its own, so that "outside the workspace"
/// has somewhere to be: `<tmp>/ws` and `<tmp>/outside/`.
struct Place {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    outside: PathBuf,
}

fn place() -> Place {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let ws = root.join("ws");
    let outside = root.join("outside");
    std::fs::create_dir(&ws).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside secret").unwrap();
    Place {
        _dir: dir,
        ws,
        outside,
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn uploads(ws: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.join(".agent-host/uploads"))
        .map(|dir| {
            dir.map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------------------- uploads

#[test]
fn an_upload_lands_in_the_uploads_directory_under_its_last_component() {
    let p = place();
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let saved = save_upload(&p.ws, "../../etc/passwd", b"not a passwd").unwrap();
    assert_eq!(saved.relative, ".agent-host/uploads/passwd");
    assert_eq!(saved.path, p.ws.join(".agent-host/uploads/passwd"));
    assert!(saved.path.is_absolute());
    assert_eq!(saved.bytes, 12);
    assert_eq!(std::fs::read(&saved.path).unwrap(), b"not a passwd");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);
    // Nothing beside the workspace, no temporary file left, and git is told to ignore it.
    assert!(!p.ws.parent().unwrap().join("etc").exists());
    assert_eq!(uploads(&p.ws), ["passwd"]);
    assert_eq!(
        std::fs::read_to_string(p.ws.join(".agent-host/.gitignore")).unwrap(),
        "*\n"
    );
}

#[test]
fn upload_names_lose_control_characters_hidden_dots_and_excess_length() {
    let p = place();
    let saved = save_upload(&p.ws, "re\0po\nrt\r\u{1b}\u{7f}.pdf", b"1").unwrap();
    assert_eq!(saved.relative, ".agent-host/uploads/report.pdf");

    let long = format!("{}.txt", "n".repeat(2000));
    let saved = save_upload(&p.ws, &long, b"2").unwrap();
    let name = saved.path.file_name().unwrap().to_str().unwrap();
    assert!(name.len() <= 120, "{} bytes", name.len());
    assert!(name.starts_with("nnn") && name.ends_with(".txt"), "{name}");

    assert_eq!(
        save_upload(&p.ws, "", b"3").unwrap().relative,
        ".agent-host/uploads/upload"
    );
    assert_eq!(
        save_upload(&p.ws, ".bashrc", b"4").unwrap().relative,
        ".agent-host/uploads/bashrc"
    );
    assert_eq!(
        save_upload(&p.ws, "..", b"5").unwrap().relative,
        ".agent-host/uploads/upload-2"
    );
    assert_eq!(
        save_upload(&p.ws, "dir\\..\\..\\evil.sh", b"6")
            .unwrap()
            .relative,
        ".agent-host/uploads/evil.sh"
    );
    for name in uploads(&p.ws) {
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
}

#[test]
fn a_second_upload_of_the_same_name_never_overwrites_the_first() {
    let p = place();
    let first = save_upload(&p.ws, "report.pdf", b"first").unwrap();
    let second = save_upload(&p.ws, "report.pdf", b"second").unwrap();
    let third = save_upload(&p.ws, "sub/report.pdf", b"third").unwrap();
    assert_eq!(first.relative, ".agent-host/uploads/report.pdf");
    assert_eq!(second.relative, ".agent-host/uploads/report-2.pdf");
    assert_eq!(third.relative, ".agent-host/uploads/report-3.pdf");
    assert_eq!(std::fs::read(&first.path).unwrap(), b"first");
    assert_eq!(std::fs::read(&second.path).unwrap(), b"second");
    assert_eq!(std::fs::read(&third.path).unwrap(), b"third");
}

#[test]
fn a_symlink_planted_at_the_upload_name_is_neither_followed_nor_replaced() {
    let p = place();
    std::fs::create_dir_all(p.ws.join(".agent-host/uploads")).unwrap();
    let target = p.outside.join("secret.txt");
    symlink(&target, p.ws.join(".agent-host/uploads/notes.txt")).unwrap();
    let saved = save_upload(&p.ws, "notes.txt", b"upload").unwrap();
    assert_eq!(saved.relative, ".agent-host/uploads/notes-2.txt");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "outside secret");
    assert!(
        std::fs::symlink_metadata(p.ws.join(".agent-host/uploads/notes.txt"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn a_symlinked_uploads_directory_or_scratch_area_is_refused() {
    let p = place();
    std::fs::create_dir(p.ws.join(".agent-host")).unwrap();
    symlink(&p.outside, p.ws.join(".agent-host/uploads")).unwrap();
    let error = save_upload(&p.ws, "a.txt", b"x").unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, UploadError::Io(_)), "{message}");
    assert!(
        message.contains("uploads is a symlink or not a directory; remove it"),
        "{message}"
    );
    assert!(!p.outside.join("a.txt").exists());
    assert_eq!(std::fs::read_dir(&p.outside).unwrap().count(), 1);

    let p = place();
    symlink(&p.outside, p.ws.join(".agent-host")).unwrap();
    let message = save_upload(&p.ws, "a.txt", b"x").unwrap_err().to_string();
    assert!(
        message.contains("is not a directory; remove it"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(&p.outside).unwrap().count(), 1);
}

#[test]
fn an_upload_over_the_limit_is_refused_naming_the_limit() {
    let p = place();
    let big = vec![0u8; MAX_UPLOAD_BYTES as usize + 1];
    let error = save_upload(&p.ws, "big.bin", &big).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, UploadError::TooLarge { .. }), "{message}");
    assert!(message.contains("limited to 20 MB"), "{message}");
    assert!(uploads(&p.ws).is_empty());
    // Exactly the limit is fine.
    let saved = save_upload(&p.ws, "big.bin", &big[1..]).unwrap();
    assert_eq!(saved.bytes, MAX_UPLOAD_BYTES);
}

// -------------------------------------------------------------------------- downloads

fn read_all(mut file: std::fs::File) -> String {
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_workspace_file_is_opened_by_relative_or_absolute_path() {
    let p = place();
    write(&p.ws.join("src/main.rs"), "fn main() {}\n");
    let download = open_for_download(&p.ws, "src/main.rs").unwrap();
    assert_eq!(download.relative, "src/main.rs");
    assert_eq!(download.name, "main.rs");
    assert_eq!(download.bytes, 13);
    assert_eq!(read_all(download.file), "fn main() {}\n");

    let absolute = p.ws.join("src/main.rs");
    let download = open_for_download(&p.ws, absolute.to_str().unwrap()).unwrap();
    assert_eq!(download.relative, "src/main.rs");
    let download = open_for_download(&p.ws, "./src/../src/main.rs").unwrap();
    assert_eq!(download.relative, "src/main.rs");

    // Symlinks that stay inside, relative or absolute, lead to the real file.
    symlink("src/main.rs", p.ws.join("relative-link")).unwrap();
    symlink(&absolute, p.ws.join("absolute-link")).unwrap();
    symlink("src", p.ws.join("code")).unwrap();
    for link in ["relative-link", "absolute-link", "code/main.rs"] {
        let download = open_for_download(&p.ws, link).unwrap();
        assert_eq!(download.relative, "src/main.rs", "{link}");
        assert_eq!(read_all(download.file), "fn main() {}\n");
    }
}

fn refused(ws: &Path, requested: &str) -> DownloadError {
    match open_for_download(ws, requested) {
        Ok(download) => panic!("{requested} was opened: {}", download.relative),
        Err(error) => error,
    }
}

fn assert_outside(ws: &Path, requested: &str) -> String {
    let error = refused(ws, requested);
    let message = error.to_string();
    assert!(
        matches!(error, DownloadError::Outside { .. }),
        "{requested}: {message}"
    );
    assert!(
        message.contains("is outside your workspace") && message.contains(&*ws.to_string_lossy()),
        "{message}"
    );
    message
}

#[test]
fn paths_that_climb_out_of_the_workspace_are_refused() {
    let p = place();
    write(&p.ws.join("a/b.txt"), "b");
    assert_outside(&p.ws, "../outside/secret.txt");
    assert_outside(&p.ws, "a/../../outside/secret.txt");
    assert_outside(&p.ws, "..");
    let through_ws = format!("{}/../outside/secret.txt", p.ws.display());
    assert_outside(&p.ws, &through_ws);
}

#[test]
fn absolute_paths_elsewhere_are_refused() {
    let p = place();
    assert_outside(&p.ws, "/etc/passwd");
    assert_outside(&p.ws, p.outside.join("secret.txt").to_str().unwrap());
    // The workspace seen through /proc is still a path elsewhere, and so is the root.
    let via_proc = format!("/proc/self/root{}", p.ws.display());
    write(&p.ws.join("file.txt"), "x");
    assert_outside(&p.ws, &format!("{via_proc}/file.txt"));
    assert_outside(&p.ws, "/proc/self/root/etc/passwd");
    assert_outside(&p.ws, "/");
}

#[test]
fn symlinks_pointing_out_are_refused_naming_the_link() {
    let p = place();
    symlink("/etc/passwd", p.ws.join("passwd")).unwrap();
    let message = assert_outside(&p.ws, "passwd");
    assert!(
        message.contains("through the symlink passwd -> /etc/passwd"),
        "{message}"
    );
    symlink("../outside/secret.txt", p.ws.join("relative-out")).unwrap();
    assert_outside(&p.ws, "relative-out");
    symlink("/proc/self/root/etc/passwd", p.ws.join("proc-root")).unwrap();
    assert_outside(&p.ws, "proc-root");
    // A chain: inside, inside, then out.
    symlink("hop2", p.ws.join("hop1")).unwrap();
    symlink("passwd", p.ws.join("hop2")).unwrap();
    assert_outside(&p.ws, "hop1");
}

#[test]
fn symlinked_directories_out_are_refused() {
    let p = place();
    symlink("/etc", p.ws.join("etc")).unwrap();
    symlink(&p.outside, p.ws.join("out")).unwrap();
    std::fs::create_dir(p.ws.join("deep")).unwrap();
    symlink("../..", p.ws.join("deep/up")).unwrap();
    assert_outside(&p.ws, "etc/passwd");
    assert_outside(&p.ws, "out/secret.txt");
    assert_outside(&p.ws, "deep/up/outside/secret.txt");
    // A loop is an error, not a hang.
    symlink("loop", p.ws.join("loop")).unwrap();
    let message = refused(&p.ws, "loop").to_string();
    assert!(message.contains("symbolic links"), "{message}");
}

#[test]
fn directories_special_files_and_missing_files_are_refused_with_their_reason() {
    let p = place();
    std::fs::create_dir(p.ws.join("src")).unwrap();
    let error = refused(&p.ws, "src");
    assert!(
        matches!(error, DownloadError::IsADirectory { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("src is a directory"), "{error}");
    assert!(matches!(
        refused(&p.ws, "."),
        DownloadError::IsADirectory { .. }
    ));
    assert!(matches!(
        refused(&p.ws, "src/"),
        DownloadError::IsADirectory { .. }
    ));

    let fifo = std::ffi::CString::new(p.ws.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // Opening a FIFO for reading would wait for a writer: refused without opening it.
    let error = refused(&p.ws, "pipe");
    assert!(matches!(error, DownloadError::NotAFile { .. }), "{error}");
    assert!(error.to_string().contains("named pipe"), "{error}");

    let error = refused(&p.ws, "missing.txt");
    assert!(matches!(error, DownloadError::NotFound { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("there is no missing.txt in your workspace"),
        "{error}"
    );
    write(&p.ws.join("file.txt"), "x");
    assert!(matches!(
        refused(&p.ws, "file.txt/more"),
        DownloadError::NotFound { .. }
    ));
    for bad in ["", "  ", "a\0b"] {
        let error = refused(&p.ws, bad);
        assert!(matches!(error, DownloadError::Invalid { .. }), "{error}");
    }
}

#[test]
fn a_file_over_the_limit_is_refused_naming_the_limit() {
    let p = place();
    let path = p.ws.join("big.bin");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: 51 MB that take no room.
    file.set_len(51 * 1024 * 1024).unwrap();
    let error = refused(&p.ws, "big.bin");
    let message = error.to_string();
    assert!(
        matches!(error, DownloadError::TooLarge { bytes, limit, .. }
            if bytes == 51 * 1024 * 1024 && limit == MAX_DOWNLOAD_BYTES),
        "{message}"
    );
    assert!(
        message.contains("big.bin is 51 MB and files up to 50 MB can be sent"),
        "{message}"
    );
    file.set_len(MAX_DOWNLOAD_BYTES).unwrap();
    assert_eq!(
        open_for_download(&p.ws, "big.bin").unwrap().bytes,
        MAX_DOWNLOAD_BYTES
    );
}

// ------------------------------------------------------------------------------- diff

fn runner() -> &'static CommandRunner {
    agent_host_tests::command_runner()
}

fn confined() -> bool {
    agent_host_tests::commands_confined()
}

/// Runs git in the test process, on a repository whose config is still harmless.
fn git(ws: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(ws)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git is installed");
    assert!(status.success(), "git {args:?}");
}

/// The programs a hostile repository names, each leaving a marker in `<ws>/markers/`
/// when run (filters and textconv also pass their input through, so git carries on).
const HOSTILE_SCRIPTS: &[(&str, &str)] = &[
    ("fsmonitor", "exit 0"),
    ("external", "exit 0"),
    ("driver", "exit 0"),
    ("textconv", "cat \"$1\""),
    ("clean", "cat"),
    ("smudge", "cat"),
    ("process", "exit 0"),
    ("pager", "cat"),
    ("included", "cat"),
    ("weird", "cat"),
    ("home", "cat"),
    ("post-index-change", "exit 0"),
];

/// Fills `.git/config` (and an included file, a hook and the command's home config)
/// with every program git could be made to run, for each of [`HOSTILE_FILES`].
fn make_hostile(ws: &Path) {
    let bin = ws.join(".hostile");
    std::fs::create_dir_all(ws.join("markers")).unwrap();
    for (name, body) in HOSTILE_SCRIPTS {
        let script = bin.join(name);
        write(
            &script,
            &format!(
                "#!/bin/sh\ntouch '{}/markers/{name}'\n{body}\n",
                ws.display()
            ),
        );
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let b = bin.display();
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join(".git/config"))
        .unwrap();
    std::io::Write::write_all(
        &mut config,
        format!(
            "[core]\n\tfsmonitor = {b}/fsmonitor\n\tpager = {b}/pager\n\thooksPath = {b}/hooks\n\
             [diff]\n\texternal = {b}/external\n\
             [diff \"tc\"]\n\ttextconv = {b}/textconv\n\tcommand = {b}/driver\n\
             [filter \"x\"]\n\tclean = {b}/clean\n\tsmudge = {b}/smudge\n\trequired = true\n\
             [filter \"p\"]\n\tprocess = {b}/process\n\
             [filter \"weird=x\"]\n\tclean = {b}/weird\n\
             [include]\n\tpath = {}/included.config\n",
            ws.display()
        )
        .as_bytes(),
    )
    .unwrap();
    write(
        &ws.join("included.config"),
        &format!("[filter \"inc\"]\n\tclean = {b}/included\n\trequired = true\n"),
    );
    write(
        &ws.join(".hostile/hooks/post-index-change"),
        &format!(
            "#!/bin/sh\ntouch '{}/markers/post-index-change'\n",
            ws.display()
        ),
    );
    std::fs::set_permissions(
        ws.join(".hostile/hooks/post-index-change"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The command's HOME is the scratch area's: its global config is the model's too.
    write(
        &ws.join(".agent-host/home/.gitconfig"),
        &format!("[filter \"home\"]\n\tclean = {b}/home\n\trequired = true\n"),
    );
    write(
        &ws.join(".gitattributes"),
        "*.txt filter=x diff=tc\n*.json filter=p\n*.md filter=inc\n*.cfg filter=weird=x\n\
         *.log filter=home\n",
    );
}

/// One tracked file per filter driver of [`make_hostile`].
const HOSTILE_FILES: &[&str] = &["notes.txt", "data.json", "readme.md", "app.cfg", "run.log"];

fn markers(ws: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.join("markers"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file under `dir`, with its contents, for before/after comparisons.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_hostile_repository_gets_its_diff_and_runs_none_of_its_programs() {
    if !confined() {
        return;
    }
    let p = place();
    let ws = &p.ws;
    git(ws, &["init", "-q", "-b", "main"]);
    for file in HOSTILE_FILES {
        write(&ws.join(file), &format!("{file} line one\n"));
    }
    git(ws, &["add", "."]);
    git(ws, &["commit", "-q", "-m", "first"]);
    make_hostile(ws);
    for file in HOSTILE_FILES {
        write(
            &ws.join(file),
            &format!("{file} line one\n{file} line two\n"),
        );
    }
    write(&ws.join("new/fresh.txt"), "a new file\n");
    // The repository as it was: the diff must change nothing in it.
    let git_before = snapshot(&ws.join(".git"));

    let diff = workspace_diff(runner(), ws).expect("the diff is made");

    assert_eq!(
        markers(ws),
        Vec::<String>::new(),
        "programs of the repository ran"
    );
    for file in HOSTILE_FILES {
        assert!(
            diff.stat.contains(file),
            "{file} missing from the stat:\n{}",
            diff.stat
        );
        assert!(
            diff.patch.contains(&format!("+{file} line two")),
            "{file} missing from the patch:\n{}",
            diff.patch
        );
    }
    assert!(diff.stat.contains("new/fresh.txt"), "{}", diff.stat);
    assert!(diff.patch.contains("new file mode"), "{}", diff.patch);
    assert!(diff.patch.contains("+a new file"), "{}", diff.patch);
    assert!(!diff.truncated);
    // The scratch area is git's workbench, never part of the diff.
    assert!(!diff.stat.contains(".agent-host"), "{}", diff.stat);
    assert_eq!(
        snapshot(&ws.join(".git")),
        git_before,
        "the repository changed"
    );
    let scratch_tmp: Vec<_> = std::fs::read_dir(ws.join(".agent-host/tmp"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(scratch_tmp.is_empty(), "left behind: {scratch_tmp:?}");

    // The control: the same repository, diffed naively in the same sandbox, does run
    // its programs, so only the neutralising above kept them off.
    let naive = runner()
        .run(&CommandRequest {
            // One git per file: the process filter, speaking no protocol, stops its git.
            command_line: &format!(
                "git status --short; for f in {}; do git diff -- \"$f\"; done; true",
                HOSTILE_FILES.join(" ")
            ),
            workspace: ws,
            cwd: ws,
            timeout: Duration::from_secs(60),
            cancel: None,
        })
        .unwrap();
    let ran = markers(ws);
    for expected in [
        "clean",
        "driver",
        "external",
        "fsmonitor",
        "home",
        "included",
        "process",
        "weird",
    ] {
        assert!(
            ran.iter().any(|name| name == expected),
            "a naive git did not run {expected} (ran {ran:?}): the test's repository is not hostile\n{}",
            String::from_utf8_lossy(&naive.stderr)
        );
    }
}

#[test]
fn new_files_of_a_repository_without_commits_are_shown() {
    if !confined() {
        return;
    }
    let p = place();
    git(&p.ws, &["init", "-q"]);
    write(&p.ws.join("hello.py"), "print('hello')\n");
    write(&p.ws.join("odd [name]*.txt"), "globs are names here\n");
    // A repository nested in the workspace, without a commit, is left out (`git add`
    // would refuse it).
    std::fs::create_dir(p.ws.join("vendor")).unwrap();
    git(&p.ws.join("vendor"), &["init", "-q"]);
    write(&p.ws.join("vendor/lib.c"), "int x;\n");
    let diff = workspace_diff(runner(), &p.ws).unwrap();
    assert!(diff.stat.contains("hello.py"), "{}", diff.stat);
    assert!(diff.patch.contains("+print('hello')"), "{}", diff.patch);
    assert!(
        diff.patch.contains("+globs are names here"),
        "{}",
        diff.patch
    );
    assert!(!diff.stat.contains("vendor"), "{}", diff.stat);

    // Nothing changed: both empty.
    let p = place();
    git(&p.ws, &["init", "-q"]);
    let diff = workspace_diff(runner(), &p.ws).unwrap();
    assert_eq!((diff.stat.as_str(), diff.patch.as_str()), ("", ""));
}

#[test]
fn a_workspace_that_is_not_a_repository_gets_the_clear_error() {
    if !confined() {
        return;
    }
    let p = place();
    write(&p.ws.join("file.txt"), "x");
    let error = workspace_diff(runner(), &p.ws).unwrap_err();
    assert!(matches!(error, DiffError::NotARepository), "{error}");
    assert_eq!(
        error.to_string(),
        "your workspace is not a git repository: ask me to run git init"
    );
    // A repository around the workspace (the workspace root inside a checkout) is not
    // the workspace's: its other files are none of this user's business.
    git(p.ws.parent().unwrap(), &["init", "-q"]);
    let error = workspace_diff(runner(), &p.ws).unwrap_err();
    assert!(matches!(error, DiffError::NotARepository), "{error}");
}

#[test]
fn a_host_that_refuses_commands_gives_its_reason() {
    let p = place();
    git(&p.ws, &["init", "-q"]);
    let mut confinement = Confinement::probe(&ExecSettings::default());
    confinement.namespaces = Err("forced off by the test".to_string());
    let strict = CommandRunner::with_confinement(ExecSettings::default(), confinement);
    let error = workspace_diff(&strict, &p.ws).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, DiffError::Exec(_)), "{message}");
    assert!(
        message.contains("commands are refused on this host") && message.contains("forced off"),
        "{message}"
    );
}
