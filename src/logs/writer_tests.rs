//! The log writer against a real SQLite database.

use super::*;
use crate::db::{Db, NewCommand};
use crate::protocol::{CommandState, LogQuery};

/// A database at `DIR/db` holding command `c1`, and a writer for it.
fn writer_for_c1(detached: bool) -> (tempfile::TempDir, Db, LogWriter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let db = Db::open(&path).expect("open");
    let cmd = NewCommand {
        id: "c1".into(),
        session_id: None,
        target: "t".into(),
        conn_name: None,
        key_name: None,
        commands: vec!["x".into()],
        options: Default::default(),
        detached,
        bulk_id: None,
    };
    db.insert_command(&cmd, 0).expect("insert");
    let w = LogWriter::start(
        &path,
        dir.path().join("spill"),
        Arc::new(AtomicU64::new(1 << 30)),
    )
    .expect("writer");
    (dir, db, w)
}

/// Every line of command `c1` as the reader returns them.
fn read_c1(path: &std::path::Path) -> crate::protocol::LogPage {
    let conn = Db::open_extra(path).expect("reader");
    crate::logs::read(
        &conn,
        &LogQuery {
            command_id: "c1".into(),
            ..Default::default()
        },
        CommandState::Completed,
        1 << 20,
    )
    .expect("read")
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_of_a_command_that_goes_on_are_stored_once_quiet() {
    let (dir, _db, w) = writer_for_c1(false);
    let path = dir.path().join("db");
    let id: Arc<str> = "c1".into();
    w.data(&id, STREAM_STDOUT, b"one\npartial".to_vec());
    w.marker(&id, "[sshkeep] a note");
    // No finish: the command goes on, and what is whole is stored once the output is quiet.
    let mut texts = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        texts = read_c1(&path)
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect();
        if texts.len() == 2 {
            break;
        }
    }
    assert_eq!(texts, ["one", "[sshkeep] a note"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loss_recorded_while_the_command_runs_keeps_its_lines_numbered() {
    let (dir, db, w) = writer_for_c1(false);
    let path = dir.path().join("db");
    let id: Arc<str> = "c1".into();
    w.unrecorded.lock().expect("lock").insert(
        id.clone(),
        Loss {
            bytes: 5,
            error: "database or disk is full".into(),
        },
    );
    w.data(&id, STREAM_STDOUT, b"a\n".to_vec());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    w.data(&id, STREAM_STDOUT, b"b\n".to_vec());
    w.finish(&id).await;
    let page = read_c1(&path);
    let texts: Vec<String> = page.lines.iter().map(|l| l.text.clone()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!((texts[0].as_str(), texts[2].as_str()), ("a", "b"));
    assert!(
        texts[1].contains("5 bytes of output were lost"),
        "{texts:?}"
    );
    assert_eq!(db.output_loss("c1").expect("loss").0, 5);
    assert!(w.unrecorded_loss("c1").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_offsets_partial_lines_and_reset() {
    let (dir, db, w) = writer_for_c1(true);
    let path = dir.path().join("db");
    let id: Arc<str> = "c1".into();
    w.data(&id, STREAM_STDOUT, b"one\ntw".to_vec());
    w.data(&id, STREAM_STDERR, b"err\r\n".to_vec());
    w.data(&id, STREAM_STDOUT, b"o\nthr".to_vec());
    // A re-attach drops the partial "thr": only whole lines count as received.
    w.reset(&id).await;
    let row = db.command("c1").expect("query").expect("row");
    assert_eq!(
        (row.stdout_bytes, row.stdout_lines, row.stderr_bytes),
        (8, 2, 5)
    );
    // The data comes again from the committed offset and the line is whole once.
    w.data(&id, STREAM_STDOUT, b"three".to_vec());
    w.finish(&id).await;
    let page = read_c1(&path);
    let got: Vec<(String, String)> = page
        .lines
        .iter()
        .map(|l| (l.stream.to_string(), l.text.clone()))
        .collect();
    let want = [
        ("stdout", "one"),
        ("stderr", "err"),
        ("stdout", "two"),
        ("stdout", "three"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let row = db.command("c1").expect("query").expect("row");
    assert_eq!((row.stdout_bytes, row.stdout_lines), (13, 3));
}
