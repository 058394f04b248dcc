//! The Telegram fake, driven over 127.0.0.1 with plain HTTP requests (JSON, form,
//! query string and multipart, as Bot API clients send them): it must accept what
//! Telegram accepts and refuse, with Telegram's answers, what Telegram refuses.

use std::time::Duration;

use agent_host_tests::fake_telegram::{
    CANT_PARSE_ENTITIES, DRAFTS_UNAVAILABLE, DraftEnd, DraftEndKind, Failure, FakeTelegram,
    NOT_MODIFIED, POLL_CONFLICT, WEBHOOK_CONFLICT, parse_telegram_html, utf16_len, visible_len,
};
use serde_json::{Value, json};

const TOKEN: &str = "123456:TEST-token_abc";
const USER: i64 = 4242;
const GROUP: i64 = -100_777;
/// An upper bound for things that happen at once: a broken wake-up fails the test instead
/// of hanging it; nothing is asserted about how long anything takes.
const LIMIT: Duration = Duration::from_secs(20);

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Calls `method` with a multipart body (an upload); returns the answer.
async fn upload(fake: &FakeTelegram, method: &str, form: reqwest::multipart::Form) -> Value {
    let response = http().post(fake.api_url(method)).multipart(form).send();
    response.await.unwrap().json().await.unwrap()
}

/// Calls `method` with a JSON body; returns the HTTP status and the answer.
async fn api(fake: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let response = http()
        .post(fake.api_url(method))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Calls `method` and expects success; returns the result.
async fn ok(fake: &FakeTelegram, method: &str, params: Value) -> Value {
    let (status, body) = api(fake, method, params.clone()).await;
    assert_eq!(status, 200, "{method} {params} failed: {body}");
    assert_eq!(body["ok"], json!(true), "{body}");
    body["result"].clone()
}

/// Calls `method` and expects an error with `status`; returns the description.
async fn err(fake: &FakeTelegram, method: &str, params: Value, status: u16) -> String {
    let (got, body) = api(fake, method, params.clone()).await;
    assert_eq!(got, status, "{method} {params} answered {body}");
    assert_eq!(body["ok"], json!(false), "{body}");
    assert_eq!(body["error_code"], json!(status), "{body}");
    body["description"].as_str().unwrap().to_string()
}

async fn send_html(fake: &FakeTelegram, chat_id: i64, html: &str) -> (u16, Value) {
    let params = json!({"chat_id": chat_id, "text": html, "parse_mode": "HTML"});
    api(fake, "sendMessage", params).await
}

fn keyboard(data: &str) -> Value {
    json!({"inline_keyboard": [[{"text": "Go", "callback_data": data}]]})
}

#[tokio::test]
async fn valid_html_is_accepted_and_its_visible_text_counted_in_utf16() {
    let fake = FakeTelegram::start(TOKEN).await;
    let html = "<b>bold</b> <i>it</i> <a href=\"https://example.com/?a=1&amp;b=2\">link</a> \
        &lt;tag&gt; &amp; &quot;q&quot; &#65;&#x42; 😀 <pre><code class=\"language-rust\">fn \
        main() {}</code></pre> <blockquote expandable>quote</blockquote> <span \
        class=\"tg-spoiler\">s</span> <tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji> \
        <STRONG>x</strong> <u>u</u> <s>s</s> <tg-spoiler>t</tg-spoiler> <code>c</code>";
    let visible = "bold it link <tag> & \"q\" AB 😀 fn main() {} quote s 👍 x u s t c";

    let (status, body) = send_html(&fake, USER, html).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["result"];
    assert_eq!(message["text"], visible);
    assert_eq!(
        message["chat"],
        json!({"id": USER, "first_name": "Tester", "username": "tester4242", "type": "private"})
    );
    assert_eq!(message["from"]["id"], 123456);
    let entities = message["entities"].as_array().unwrap();
    assert_eq!(
        entities[0],
        json!({"type": "bold", "offset": 0, "length": 4})
    );
    assert!(entities.contains(&json!({"type": "text_link", "offset": 8, "length": 4, "url": "https://example.com/?a=1&b=2"})));
    // After "😀 " (2 units for the emoji): offsets count UTF-16 units.
    let pre_offset = utf16_len("bold it link <tag> & \"q\" AB 😀 ");
    assert!(
        entities.contains(
            &json!({"type": "pre", "offset": pre_offset, "length": 12, "language": "rust"})
        ),
        "{entities:?}"
    );
    assert!(
        entities
            .iter()
            .any(|e| e["type"] == "expandable_blockquote")
    );
    assert!(
        entities
            .iter()
            .any(|e| e["type"] == "custom_emoji" && e["custom_emoji_id"] == "5368324170671202286")
    );

    let stored = fake.messages(USER);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, visible);
    assert_eq!(stored[0].html, html);
    assert_eq!(stored[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(
        stored[0].message_id,
        message["message_id"].as_i64().unwrap()
    );

    // The helpers on their own.
    assert_eq!(
        parse_telegram_html("a &lt;b&gt; &#x1F600;&#33;").unwrap(),
        "a <b> 😀!"
    );
    assert_eq!(utf16_len("😀"), 2);
    assert_eq!(utf16_len("é"), 1);
    assert_eq!(visible_len("  <b>😀</b>\n", true), Ok(2));
    assert_eq!(visible_len("<b>x", false), Ok(4));
}

#[tokio::test]
async fn malformed_html_is_refused_with_cant_parse_entities() {
    let fake = FakeTelegram::start(TOKEN).await;
    let cases = [
        (
            "<foo>x</foo>",
            "Unsupported start tag \"foo\" at byte offset 0",
        ),
        ("é <br>", "Unsupported start tag \"br\" at byte offset 3"),
        (
            "<b>never closed",
            "Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            "<b><i>x</b></i>",
            "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"",
        ),
        (
            "<B>x</B>",
            "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</B>\"",
        ),
        ("fish & chips", "Unescaped \"&\" at byte offset 5"),
        ("AT&T", "Unescaped \"&\" at byte offset 2"),
        ("&nbsp;", "Unsupported HTML entity \"&nbsp;\""),
        (
            "&#12345678;",
            "Invalid numeric character reference at byte offset 0",
        ),
        ("&#xD83D;", "unmatched surrogate code units"),
        (
            "<i =x>y</i>",
            "Empty attribute name in the tag \"i\" at byte offset 0",
        ),
        ("1 < 2", "Unsupported start tag \"\" at byte offset 2"),
        ("x <b", "Unclosed start tag at byte offset 2"),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        (
            "<span>x</span>",
            "Tag \"span\" must have class \"tg-spoiler\"",
        ),
        (
            "<code class=\"language-rust\">x</code>",
            "must be directly inside \"pre\"",
        ),
        ("<a href=\"x\"", "Unclosed start tag at byte offset 0"),
        (
            "<tg-emoji emoji-id=\"abc\">x</tg-emoji>",
            "Invalid custom emoji identifier",
        ),
    ];
    for (html, reason) in cases {
        let (status, body) = send_html(&fake, USER, html).await;
        assert_eq!(status, 400, "{html:?} was accepted: {body}");
        let description = body["description"].as_str().unwrap();
        assert!(
            description.starts_with(CANT_PARSE_ENTITIES),
            "{html:?}: {description}"
        );
        assert!(description.contains(reason), "{html:?}: {description}");
        assert_eq!(
            parse_telegram_html(html).unwrap_err(),
            description[CANT_PARSE_ENTITIES.len()..]
        );
    }
    assert!(
        fake.messages(USER).is_empty(),
        "refused messages are not stored"
    );

    // Without parse_mode the same text is taken as it is.
    let result = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "1 < 2 & <foo>"}),
    )
    .await;
    assert_eq!(result["text"], "1 < 2 & <foo>");
    assert!(result.get("entities").is_none());
}

#[tokio::test]
async fn lengths_are_counted_after_parsing_in_utf16_units() {
    let fake = FakeTelegram::start(TOKEN).await;
    // Tags do not count, entities count as the character they stand for.
    let longest = format!("<b>{}</b>", "a".repeat(4096));
    assert_eq!(send_html(&fake, USER, &longest).await.0, 200);
    assert_eq!(send_html(&fake, USER, &"&amp;".repeat(4096)).await.0, 200);
    // 2048 emoji are 4096 units: the limit exactly.
    let emoji = "😀".repeat(2048);
    assert_eq!(send_html(&fake, USER, &emoji).await.0, 200);

    let too_long = [format!("{emoji}a"), "a".repeat(4097), "é".repeat(4097)];
    for text in too_long {
        let description = err(
            &fake,
            "sendMessage",
            json!({"chat_id": USER, "text": text}),
            400,
        )
        .await;
        assert_eq!(description, "Bad Request: message is too long");
    }
    for (text, parse_mode) in [("", None), (" \n\t ", None), ("<b> </b>\n", Some("HTML"))] {
        let params = json!({"chat_id": USER, "text": text, "parse_mode": parse_mode});
        let description = err(&fake, "sendMessage", params, 400).await;
        assert_eq!(description, "Bad Request: message text is empty");
    }
    let description = err(&fake, "sendMessage", json!({"chat_id": USER}), 400).await;
    assert_eq!(description, "Bad Request: message text is empty");
    // Surrounding whitespace is trimmed, as Telegram trims it.
    let result = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "\n <b>hi</b> \n", "parse_mode": "html"}),
    )
    .await;
    assert_eq!(result["text"], "hi");
    assert_eq!(
        result["entities"],
        json!([{"type": "bold", "offset": 0, "length": 2}])
    );
    assert_eq!(fake.messages(USER).len(), 4);
}

#[tokio::test]
async fn an_edit_that_changes_nothing_is_not_modified() {
    let fake = FakeTelegram::start(TOKEN).await;
    let sent = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "<b>hi</b>", "parse_mode": "HTML"}),
    )
    .await;
    let id = sent["message_id"].as_i64().unwrap();
    let edit = |text: &str, markup: Option<Value>| json!({"chat_id": USER, "message_id": id, "text": text, "parse_mode": "HTML", "reply_markup": markup});

    assert_eq!(
        err(&fake, "editMessageText", edit("<b>hi</b>", None), 400).await,
        NOT_MODIFIED
    );
    // The same HTML written differently is the same content.
    assert_eq!(
        err(
            &fake,
            "editMessageText",
            edit("<strong>hi</strong>", None),
            400
        )
        .await,
        NOT_MODIFIED
    );
    // Same visible text without the bold: a change.
    let edited = ok(&fake, "editMessageText", edit("hi", None)).await;
    assert_eq!(edited["text"], "hi");
    assert!(edited["edit_date"].is_i64());
    // Same text with a keyboard: a change; again: not.
    ok(&fake, "editMessageText", edit("hi", Some(keyboard("k")))).await;
    assert_eq!(
        err(
            &fake,
            "editMessageText",
            edit("hi", Some(keyboard("k"))),
            400
        )
        .await,
        NOT_MODIFIED
    );
    let markup_only = json!({"chat_id": USER, "message_id": id, "reply_markup": keyboard("k")});
    assert_eq!(
        err(&fake, "editMessageReplyMarkup", markup_only, 400).await,
        NOT_MODIFIED
    );
    // Leaving the keyboard out of an edit removes it.
    ok(&fake, "editMessageText", edit("hi", None)).await;

    let unknown = json!({"chat_id": USER, "message_id": id + 1000, "text": "x"});
    assert_eq!(
        err(&fake, "editMessageText", unknown, 400).await,
        "Bad Request: message to edit not found"
    );
    let bad_html = edit("<b>x", None);
    assert!(
        err(&fake, "editMessageText", bad_html, 400)
            .await
            .starts_with(CANT_PARSE_ENTITIES)
    );

    let messages = fake.messages(USER);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "hi");
    assert_eq!(messages[0].reply_markup, None);
    assert!(messages[0].edit_date.is_some());
}

#[tokio::test]
async fn drafts_only_in_private_chats_with_a_nonzero_id() {
    let fake = FakeTelegram::start(TOKEN).await;
    let draft = |chat_id: i64, draft_id: i64, text: &str| json!({"chat_id": chat_id, "draft_id": draft_id, "text": text, "parse_mode": "HTML"});
    let description = err(&fake, "sendMessageDraft", draft(GROUP, 7, "hi"), 400).await;
    assert!(description.starts_with("Bad Request: "), "{description}");
    assert!(description.contains("private"), "{description}");
    let description = err(&fake, "sendMessageDraft", draft(USER, 0, "hi"), 400).await;
    assert!(description.contains("draft_id"), "{description}");
    let description = err(&fake, "sendMessageDraft", draft(USER, 7, "<i>x"), 400).await;
    assert!(
        description.starts_with(CANT_PARSE_ENTITIES),
        "{description}"
    );
    let long = "a".repeat(4097);
    assert_eq!(
        err(&fake, "sendMessageDraft", draft(USER, 7, &long), 400).await,
        "Bad Request: message is too long"
    );

    // Empty is fine for a draft.
    assert_eq!(
        ok(&fake, "sendMessageDraft", draft(USER, 7, "")).await,
        json!(true)
    );
    assert_eq!(
        ok(&fake, "sendMessageDraft", draft(USER, 7, "<b>thinking</b>")).await,
        json!(true)
    );
    let shown = fake.draft(USER).unwrap();
    assert_eq!(
        (shown.draft_id, shown.text.as_str(), shown.html.as_str()),
        (7, "thinking", "<b>thinking</b>")
    );
    // The message that follows replaces the draft.
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "done"}),
    )
    .await;
    assert_eq!(fake.draft(USER), None);
}

/// Shows `html` as draft `draft_id` in the private chat `chat_id`, `extra` parameters added.
async fn show_draft(fake: &FakeTelegram, chat_id: i64, draft_id: i64, html: &str, extra: Value) {
    let mut params =
        json!({"chat_id": chat_id, "draft_id": draft_id, "text": html, "parse_mode": "HTML"});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    assert_eq!(ok(fake, "sendMessageDraft", params).await, json!(true));
}

/// Sends a plain text message; returns its id.
async fn send_text(fake: &FakeTelegram, chat_id: i64, text: &str) -> i64 {
    let sent = ok(
        fake,
        "sendMessage",
        json!({"chat_id": chat_id, "text": text}),
    )
    .await;
    sent["message_id"].as_i64().unwrap()
}

fn replaced(draft_id: i64, draft_text: &str, message_id: i64, message_text: &str) -> DraftEnd {
    DraftEnd {
        draft_id,
        draft_text: draft_text.to_string(),
        how: DraftEndKind::Replaced {
            message_id,
            message_text: message_text.to_string(),
        },
    }
}

#[tokio::test]
async fn a_message_ends_the_draft_and_loses_its_text_unless_it_repeats_it() {
    let fake = FakeTelegram::start(TOKEN).await;

    // A flush: the message says what the draft showed (compared as the user sees them).
    show_draft(&fake, USER, 7, "<b>partial</b> answer", json!({})).await;
    let flush = send_text(&fake, USER, " partial answer\n").await;
    // Something else after a draft with text: what the user was reading is gone.
    show_draft(&fake, USER, 8, "half of a thought", json!({})).await;
    let other = send_text(&fake, USER, "an unrelated notice").await;
    // An empty draft only showed "Thinking…"; any new message (a document here) is fine.
    show_draft(&fake, USER, 9, "", json!({})).await;
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .text("caption", "the log")
        .part(
            "document",
            reqwest::multipart::Part::bytes(b"log".to_vec()).file_name("log.txt"),
        );
    let document = upload(&fake, "sendDocument", form).await;
    let document = document["result"]["message_id"].as_i64().unwrap();
    // A flush may hold more than the draft showed yet: it still keeps what was shown.
    show_draft(&fake, USER, 10, "step one", json!({})).await;
    let longer = send_text(&fake, USER, "step one\nstep two").await;
    // A message in a chat without a draft ends nothing.
    send_text(&fake, USER, "no draft before me").await;

    let ends = fake.draft_ends(USER);
    assert_eq!(
        ends,
        [
            replaced(7, "partial answer", flush, "partial answer"),
            replaced(8, "half of a thought", other, "an unrelated notice"),
            replaced(9, "", document, "the log"),
            replaced(10, "step one", longer, "step one\nstep two"),
        ]
    );
    let lost: Vec<bool> = ends.iter().map(DraftEnd::lost).collect();
    assert_eq!(lost, [false, true, false, false]);
    assert_eq!(fake.draft(USER), None);
    assert!(fake.draft_ends(USER + 1).is_empty());
}

#[tokio::test]
async fn a_draft_replacing_a_draft_is_no_end() {
    let fake = FakeTelegram::start(TOKEN).await;
    show_draft(&fake, USER, 7, "a", json!({})).await;
    show_draft(&fake, USER, 7, "ab", json!({})).await;
    show_draft(&fake, USER, 8, "a new start", json!({"can_stop": true})).await;
    assert!(fake.draft_ends(USER).is_empty());
    let shown = fake.draft(USER).unwrap();
    assert_eq!(
        (shown.draft_id, shown.text.as_str(), shown.can_stop),
        (8, "a new start", true)
    );

    // Only the draft shown last ends, and its text is the one compared.
    let message = send_text(&fake, USER, "a new start").await;
    assert_eq!(
        fake.draft_ends(USER),
        [replaced(8, "a new start", message, "a new start")]
    );
    assert!(!fake.draft_ends(USER)[0].lost());
}

#[tokio::test]
async fn stop_ends_only_a_draft_with_a_stop_button_and_sends_its_update() {
    let fake = FakeTelegram::start(TOKEN).await;
    let allowed = json!({"allowed_updates": ["message", "stopped_message_generation"]});
    ok(&fake, "getUpdates", allowed).await;
    assert_eq!(fake.press_stop(USER), None, "no draft, no button");

    show_draft(&fake, USER, 7, "no button", json!({})).await;
    assert!(
        !fake.draft(USER).unwrap().can_stop,
        "can_stop defaults to false"
    );
    assert_eq!(fake.press_stop(USER), None);
    assert_eq!(fake.press_stop_without_update(USER), None);
    assert_eq!(fake.draft(USER).unwrap().text, "no button", "still shown");
    assert_eq!(fake.pending_updates(), 0);

    // Sent as a form field, the flag is text.
    let response = http()
        .post(fake.api_url("sendMessageDraft"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "chat_id={USER}&draft_id=8&text=working+on+it&can_stop=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let update_id = fake.press_stop(USER).expect("the draft has a Stop button");
    assert_eq!(fake.draft(USER), None);
    let stopped = DraftEnd {
        draft_id: 8,
        draft_text: "working on it".to_string(),
        how: DraftEndKind::Stopped,
    };
    assert!(!stopped.lost(), "the user chose to stop it");
    assert_eq!(fake.draft_ends(USER), [stopped]);
    assert_eq!(fake.press_stop(USER), None, "a stopped draft is gone");

    let updates = ok(&fake, "getUpdates", json!({})).await;
    let mut expected = FakeTelegram::stopped_generation(USER, 8);
    expected["update_id"] = json!(update_id);
    assert_eq!(updates, json!([expected]));
    let update = &updates[0]["stopped_message_generation"];
    assert_eq!(update["chat"]["type"], "private");
    assert_eq!(update["chat"]["id"], USER);
    assert_eq!(update.get("from"), None);
    assert_eq!(update.get("message_thread_id"), None);

    // A draft in a topic: the update names the topic.
    let topic = json!({"can_stop": true, "message_thread_id": 55});
    show_draft(&fake, USER, 9, "in a topic", topic).await;
    let in_topic = fake.press_stop(USER).unwrap();
    let updates = ok(&fake, "getUpdates", json!({"offset": update_id + 1})).await;
    assert_eq!(updates[0]["update_id"], in_topic);
    assert_eq!(
        updates[0]["stopped_message_generation"]["message_thread_id"],
        55
    );

    // Without the update: the draft stops all the same, nothing is queued.
    show_draft(&fake, USER, 10, "quietly", json!({"can_stop": true})).await;
    ok(&fake, "getUpdates", json!({"offset": in_topic + 1})).await;
    assert_eq!(fake.press_stop_without_update(USER), Some(10));
    assert_eq!(fake.draft(USER), None);
    assert_eq!(fake.pending_updates(), 0);
    // A message after a stopped draft ends nothing more.
    send_text(&fake, USER, "after the stop").await;
    let ends = fake.draft_ends(USER);
    let how: Vec<(i64, &DraftEndKind)> = ends.iter().map(|e| (e.draft_id, &e.how)).collect();
    assert_eq!(
        how,
        [
            (8, &DraftEndKind::Stopped),
            (9, &DraftEndKind::Stopped),
            (10, &DraftEndKind::Stopped)
        ]
    );
}

#[tokio::test]
async fn a_stop_update_is_delivered_only_where_allowed_updates_lists_it() {
    let fake = FakeTelegram::start(TOKEN).await;
    // An update without `message` or `from` is queued like any other.
    let pushed = fake.push_update(FakeTelegram::stopped_generation(USER, 3));
    fake.push_update(FakeTelegram::private_message(USER, "hello"));
    assert_eq!(fake.pending_updates(), 2);
    // Not asked for (no allowed_updates, then a list without it): never delivered.
    let updates = ok(&fake, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 1);
    assert_eq!(updates[0]["message"]["text"], "hello");
    assert!(updates[0]["update_id"].as_i64().unwrap() > pushed);
    show_draft(&fake, USER, 4, "thinking aloud", json!({"can_stop": true})).await;
    ok(&fake, "getUpdates", json!({"allowed_updates": ["message"]})).await;
    assert!(fake.press_stop(USER).is_some());
    let updates = ok(&fake, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 1, "{updates}");
    assert!(updates[0].get("message").is_some(), "{updates}");

    // Listed: delivered, and a waiting long poll is woken by the stop.
    let last = updates[0]["update_id"].as_i64().unwrap();
    let allowed = json!(["message", "stopped_message_generation"]);
    let poll = tokio::spawn({
        let fake = fake.clone();
        let params = json!({"offset": last + 1, "timeout": 600, "allowed_updates": allowed});
        async move { ok(&fake, "getUpdates", params).await }
    });
    assert!(fake.wait_for_poll(LIMIT).await);
    show_draft(&fake, USER, 5, "again", json!({"can_stop": true})).await;
    let update_id = fake.press_stop(USER).unwrap();
    let updates = tokio::time::timeout(LIMIT, poll)
        .await
        .expect("woken by the stop")
        .unwrap();
    assert_eq!(updates[0]["update_id"], update_id);
    assert_eq!(updates[0]["stopped_message_generation"]["draft_id"], 5);
}

#[tokio::test]
async fn refused_drafts_fail_until_allowed_again() {
    let fake = FakeTelegram::start(TOKEN).await;
    show_draft(&fake, USER, 7, "shown before", json!({})).await;
    fake.refuse_drafts(true);
    let params = json!({"chat_id": USER, "draft_id": 7, "text": "more"});
    for _ in 0..2 {
        assert_eq!(
            err(&fake, "sendMessageDraft", params.clone(), 400).await,
            DRAFTS_UNAVAILABLE
        );
    }
    assert_eq!(fake.draft(USER).unwrap().text, "shown before");
    // Other methods are unaffected.
    send_text(&fake, USER, "a message").await;

    fake.refuse_drafts(false);
    assert_eq!(ok(&fake, "sendMessageDraft", params).await, json!(true));
    assert_eq!(fake.draft(USER).unwrap().text, "more");
}

#[tokio::test]
async fn injected_failures_answer_the_next_calls_then_service_resumes() {
    let fake = FakeTelegram::start(TOKEN).await;
    let hello = json!({"chat_id": USER, "text": "hello"});
    fake.fail_next("sendMessage", Failure::TooManyRequests { retry_after: 7 });
    fake.fail_next("SENDMESSAGE", Failure::Status(502, "Bad Gateway".into()));

    let (status, body) = api(&fake, "sendMessage", hello.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}})
    );
    assert_eq!(
        err(&fake, "sendMessage", hello.clone(), 502).await,
        "Bad Gateway"
    );
    ok(&fake, "sendMessage", hello.clone()).await;
    assert_eq!(fake.messages(USER).len(), 1, "failed calls send nothing");

    fake.fail_next("sendMessage", Failure::CantParseEntities);
    let description = err(&fake, "sendMessage", hello.clone(), 400).await;
    assert!(
        description.starts_with(CANT_PARSE_ENTITIES),
        "{description}"
    );
    let id = fake.messages(USER)[0].message_id;
    fake.fail_next("editMessageText", Failure::NotModified);
    let edit = json!({"chat_id": USER, "message_id": id, "text": "changed"});
    assert_eq!(err(&fake, "editMessageText", edit, 400).await, NOT_MODIFIED);

    // A dropped connection: a network error for the client, then the fake serves again.
    fake.fail_next("sendMessage", Failure::DropConnection);
    let error = http()
        .post(fake.api_url("sendMessage"))
        .json(&hello)
        .send()
        .await
        .unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    ok(&fake, "sendMessage", hello).await;

    let calls = fake.calls_to("sendMessage");
    let outcomes: Vec<(u16, bool)> = calls.iter().map(|call| (call.status, call.ok)).collect();
    assert_eq!(
        outcomes,
        [
            (429, false),
            (502, false),
            (200, true),
            (400, false),
            (0, false),
            (200, true)
        ]
    );
    assert_eq!(calls[0].params, json!({"chat_id": USER, "text": "hello"}));
    assert_eq!(calls[0].response["parameters"]["retry_after"], 7);
    assert!(calls.windows(2).all(|pair| pair[0].at <= pair[1].at));
}

#[tokio::test]
async fn get_updates_long_poll_wakes_on_push_and_honours_offset() {
    let fake = FakeTelegram::start(TOKEN).await;
    let poll = tokio::spawn({
        let fake = fake.clone();
        // The long poll's own timeout is far beyond LIMIT: only a wake-up can end it in time.
        async move { api(&fake, "getUpdates", json!({"timeout": 600})).await }
    });
    assert!(fake.wait_for_poll(LIMIT).await);
    let id = fake.push_update(FakeTelegram::private_message(
        USER,
        "/start@fake_agent_bot now",
    ));
    let (status, body) = tokio::time::timeout(LIMIT, poll)
        .await
        .expect("woken by the push")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 1);
    let message = &updates[0]["message"];
    assert_eq!(updates[0]["update_id"], id);
    assert_eq!(message["text"], "/start@fake_agent_bot now");
    assert_eq!(message["chat"]["type"], "private");
    assert_eq!(message["from"]["id"], USER);
    assert_eq!(
        message["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 21}])
    );

    // Not confirmed yet: delivered again.
    let again = ok(&fake, "getUpdates", json!({"offset": 0, "timeout": 0})).await;
    assert_eq!(again.as_array().unwrap().len(), 1);
    let second = fake.push_update(FakeTelegram::group_message(GROUP, USER, "hello"));
    assert!(second > id);
    // offset = id + 1 confirms the first; the second is answered at once.
    let next = ok(
        &fake,
        "getUpdates",
        json!({"offset": id + 1, "timeout": 600}),
    )
    .await;
    assert_eq!(next.as_array().unwrap().len(), 1);
    assert_eq!(next[0]["update_id"], second);
    assert_eq!(next[0]["message"]["chat"]["type"], "group");
    assert_eq!(fake.pending_updates(), 1);
    assert_eq!(
        ok(&fake, "getUpdates", json!({"offset": second + 1})).await,
        json!([])
    );
    assert_eq!(fake.pending_updates(), 0);

    // limit caps the batch.
    for n in 0..3 {
        fake.push_update(FakeTelegram::private_message(USER, &format!("m{n}")));
    }
    let batch = ok(&fake, "getUpdates", json!({"limit": 2})).await;
    assert_eq!(batch.as_array().unwrap().len(), 2);
    assert_eq!(batch[0]["message"]["text"], "m0");
}

#[tokio::test]
async fn a_second_get_updates_terminates_the_first() {
    let fake = FakeTelegram::start(TOKEN).await;
    let first = tokio::spawn({
        let fake = fake.clone();
        async move { api(&fake, "getUpdates", json!({"timeout": 600})).await }
    });
    assert!(fake.wait_for_poll(LIMIT).await);
    let second = tokio::spawn({
        let fake = fake.clone();
        async move { api(&fake, "getUpdates", json!({"timeout": 600})).await }
    });
    let (status, body) = tokio::time::timeout(LIMIT, first).await.unwrap().unwrap();
    assert_eq!(status, 409);
    assert_eq!(body["description"], POLL_CONFLICT);
    // The newer one goes on and gets the update.
    assert!(fake.wait_for_poll(LIMIT).await);
    fake.push_update(FakeTelegram::private_message(USER, "hi"));
    let (status, body) = tokio::time::timeout(LIMIT, second).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["result"][0]["message"]["text"], "hi");
}

#[tokio::test]
async fn get_updates_conflicts_with_a_webhook() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.push_update(FakeTelegram::private_message(USER, "queued"));
    fake.set_webhook_url(Some("https://example.com/hook"));
    assert_eq!(
        err(&fake, "getUpdates", json!({}), 409).await,
        WEBHOOK_CONFLICT
    );
    let info = ok(&fake, "getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], "https://example.com/hook");
    assert_eq!(info["pending_update_count"], 1);

    let (_, body) = api(&fake, "deleteWebhook", json!({})).await;
    assert_eq!(body["description"], "Webhook was deleted");
    assert_eq!(
        ok(&fake, "getUpdates", json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let description = err(
        &fake,
        "setWebhook",
        json!({"url": "http://example.com/hook"}),
        400,
    )
    .await;
    assert!(description.contains("HTTPS"), "{description}");
    ok(
        &fake,
        "setWebhook",
        json!({"url": "https://example.com/hook2"}),
    )
    .await;
    assert_eq!(
        err(&fake, "getUpdates", json!({}), 409).await,
        WEBHOOK_CONFLICT
    );
    ok(
        &fake,
        "deleteWebhook",
        json!({"drop_pending_updates": true}),
    )
    .await;
    assert_eq!(fake.pending_updates(), 0);
    assert_eq!(ok(&fake, "getWebhookInfo", json!({})).await["url"], "");
    assert_eq!(ok(&fake, "getUpdates", json!({})).await, json!([]));
}

#[tokio::test]
async fn callback_queries_must_be_delivered_and_are_answered_once() {
    let fake = FakeTelegram::start(TOKEN).await;
    let sent = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "Pick", "reply_markup": keyboard("yes")}),
    )
    .await;
    let message_id = sent["message_id"].as_i64().unwrap();
    let update = FakeTelegram::callback_query(USER, USER, message_id, "yes");
    let id = update["callback_query"]["id"].as_str().unwrap().to_string();
    fake.push_update(update);

    let invalid =
        "Bad Request: query is too old and response timeout expired or query ID is invalid";
    // Not delivered yet: the bot cannot know the id.
    assert_eq!(
        err(
            &fake,
            "answerCallbackQuery",
            json!({"callback_query_id": id}),
            400
        )
        .await,
        invalid
    );
    let updates = ok(&fake, "getUpdates", json!({})).await;
    let query = &updates[0]["callback_query"];
    assert_eq!(query["data"], "yes");
    // The message is filled in as it stands.
    assert_eq!(query["message"]["text"], "Pick");
    assert_eq!(query["message"]["reply_markup"], keyboard("yes"));
    assert_eq!(fake.unanswered_callbacks(), [id.as_str()]);

    let long = "x".repeat(201);
    let description = err(
        &fake,
        "answerCallbackQuery",
        json!({"callback_query_id": id, "text": long}),
        400,
    )
    .await;
    assert_eq!(description, "Bad Request: MESSAGE_TOO_LONG");
    ok(
        &fake,
        "answerCallbackQuery",
        json!({"callback_query_id": id, "text": "Done", "show_alert": false}),
    )
    .await;
    assert!(fake.unanswered_callbacks().is_empty());
    assert_eq!(
        err(
            &fake,
            "answerCallbackQuery",
            json!({"callback_query_id": id}),
            400
        )
        .await,
        invalid
    );
    assert_eq!(
        err(
            &fake,
            "answerCallbackQuery",
            json!({"callback_query_id": "42"}),
            400
        )
        .await,
        invalid
    );

    // A button under a message the bot never sent arrives with an inaccessible message.
    fake.push_update(FakeTelegram::callback_query(USER, USER, 999_999_999, "old"));
    let updates = ok(
        &fake,
        "getUpdates",
        json!({"offset": updates[0]["update_id"].as_i64().unwrap() + 1}),
    )
    .await;
    assert_eq!(updates[0]["callback_query"]["message"]["date"], 0);
    assert_eq!(fake.unanswered_callbacks().len(), 1);
}

#[tokio::test]
async fn inline_keyboards_and_reply_targets_are_validated() {
    let fake = FakeTelegram::start(TOKEN).await;
    let send = |markup: Value| json!({"chat_id": USER, "text": "x", "reply_markup": markup});
    let too_long = "d".repeat(65);
    assert_eq!(
        err(&fake, "sendMessage", send(keyboard(&too_long)), 400).await,
        "Bad Request: BUTTON_DATA_INVALID"
    );
    let no_action = json!({"inline_keyboard": [[{"text": "plain"}]]});
    assert!(
        err(&fake, "sendMessage", send(no_action), 400)
            .await
            .contains("Text buttons are unallowed")
    );
    let not_rows = json!({"inline_keyboard": [{"text": "a", "callback_data": "b"}]});
    assert!(
        err(&fake, "sendMessage", send(not_rows), 400)
            .await
            .contains("Array of Arrays")
    );
    let bad_url = json!({"inline_keyboard": [[{"text": "a", "url": "ftp://x"}]]});
    assert_eq!(
        err(&fake, "sendMessage", send(bad_url), 400).await,
        "Bad Request: BUTTON_URL_INVALID"
    );
    ok(&fake, "sendMessage", send(keyboard(&"d".repeat(64)))).await;

    // Replies must target a message of the chat.
    let reply = |target: i64| json!({"chat_id": USER, "text": "re", "reply_parameters": {"message_id": target}});
    assert_eq!(
        err(&fake, "sendMessage", reply(987_654_321), 400).await,
        "Bad Request: message to be replied not found"
    );
    let update = FakeTelegram::private_message(USER, "question");
    let question = update["message"]["message_id"].as_i64().unwrap();
    fake.push_update(update);
    let answer = ok(&fake, "sendMessage", reply(question)).await;
    assert_eq!(answer["reply_to_message"]["message_id"], question);
    assert_eq!(
        fake.messages(USER).last().unwrap().reply_to_message_id,
        Some(question)
    );
    let lenient = json!({"chat_id": USER, "text": "re", "reply_parameters": {"message_id": 987_654_321, "allow_sending_without_reply": true}});
    ok(&fake, "sendMessage", lenient).await;
    // The older spelling too.
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "re", "reply_to_message_id": question}),
    )
    .await;

    // Deleting.
    let id = answer["message_id"].as_i64().unwrap();
    ok(
        &fake,
        "deleteMessage",
        json!({"chat_id": USER, "message_id": id}),
    )
    .await;
    assert!(fake.messages(USER).iter().all(|m| m.message_id != id));
    assert_eq!(
        err(
            &fake,
            "deleteMessage",
            json!({"chat_id": USER, "message_id": id}),
            400
        )
        .await,
        "Bad Request: message to delete not found"
    );
}

#[tokio::test]
async fn set_my_commands_is_validated() {
    let fake = FakeTelegram::start(TOKEN).await;
    let commands = json!([
        {"command": "start", "description": "Start a session"},
        {"command": "stop_2", "description": "Stop"},
    ]);
    ok(&fake, "setMyCommands", json!({"commands": commands})).await;
    assert_eq!(ok(&fake, "getMyCommands", json!({})).await, commands);
    // Another scope has its own list.
    let group_scope = json!({"type": "all_group_chats"});
    assert_eq!(
        ok(&fake, "getMyCommands", json!({"scope": group_scope})).await,
        json!([])
    );

    let refused = [
        (
            json!([{"command": "Start", "description": "x"}]),
            "\"Start\"",
        ),
        (
            json!([{"command": "/start", "description": "x"}]),
            "\"/start\"",
        ),
        (
            json!([{"command": "a".repeat(33), "description": "x"}]),
            "1-32",
        ),
        (json!([{"command": "", "description": "x"}]), "1-32"),
        (
            json!([{"command": "ok", "description": ""}]),
            "description of command \"ok\"",
        ),
        (
            json!([{"command": "ok", "description": "d".repeat(257)}]),
            "it has 257",
        ),
        (json!([{"command": "ok"}]), "\"description\""),
        (json!({"command": "ok", "description": "x"}), "Array"),
    ];
    for (commands, named) in refused {
        let description = err(&fake, "setMyCommands", json!({"commands": commands}), 400).await;
        assert!(description.starts_with("Bad Request: "), "{description}");
        assert!(description.contains(named), "{commands}: {description}");
    }
    let many: Vec<Value> = (0..101)
        .map(|n| json!({"command": format!("c{n}"), "description": "x"}))
        .collect();
    let description = err(&fake, "setMyCommands", json!({"commands": many}), 400).await;
    assert!(description.contains("101"), "{description}");
    assert_eq!(
        ok(&fake, "getMyCommands", json!({})).await,
        commands,
        "refused lists change nothing"
    );

    // Sent as a form, the list is JSON text; recorded as the JSON it holds.
    let form = "commands=%5B%7B%22command%22%3A%22help%22%2C%22description%22%3A%22Help%22%7D%5D";
    let response = http()
        .post(fake.api_url("setMyCommands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let call = fake.calls_to("setMyCommands").pop().unwrap();
    assert_eq!(
        call.params["commands"],
        json!([{"command": "help", "description": "Help"}])
    );
    ok(&fake, "deleteMyCommands", json!({})).await;
    assert_eq!(ok(&fake, "getMyCommands", json!({})).await, json!([]));
}

#[tokio::test]
async fn send_document_multipart_is_recorded_and_downloadable() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bytes = b"line 1\nline 2\n\x00\xff".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .text("caption", "<b>report</b> &amp; log")
        .text("parse_mode", "HTML")
        .text("reply_markup", keyboard("again").to_string())
        .part(
            "document",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("report.txt"),
        );
    let response = http()
        .post(fake.api_url("sendDocument"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let message = &body["result"];
    assert_eq!(message["caption"], "report & log");
    assert_eq!(
        message["caption_entities"],
        json!([{"type": "bold", "offset": 0, "length": 6}])
    );
    assert_eq!(message["document"]["file_name"], "report.txt");
    assert_eq!(message["document"]["file_size"], bytes.len());
    assert_eq!(message["reply_markup"], keyboard("again"));

    let call = fake.wait_for_call("sendDocument", LIMIT).await.unwrap();
    assert!(call.ok);
    assert_eq!(
        call.params["document"],
        json!({"filename": "report.txt", "size": bytes.len()})
    );
    assert_eq!(call.int_param("chat_id"), Some(USER));
    assert_eq!(call.str_param("caption"), Some("<b>report</b> &amp; log"));
    assert_eq!(
        call.params["reply_markup"],
        keyboard("again"),
        "JSON fields are recorded as JSON"
    );

    let stored = &fake.messages(USER)[0];
    let document = stored.document.as_ref().unwrap();
    assert_eq!(
        (document.file_name.as_str(), &document.bytes),
        ("report.txt", &bytes)
    );
    assert_eq!(stored.text, "report & log");

    // The file can be fetched back as Telegram serves it.
    let file_id = message["document"]["file_id"].as_str().unwrap();
    let file = ok(&fake, "getFile", json!({"file_id": file_id})).await;
    assert_eq!(file["file_size"], bytes.len());
    let path = file["file_path"].as_str().unwrap();
    let url = format!("{}/file/bot{TOKEN}/{path}", fake.base_url());
    let downloaded = http().get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), bytes.as_slice());

    // A caption over 1024 units, a part without a file name, no document at all.
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .text("caption", "😀".repeat(513))
        .part(
            "document",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a.txt"),
        );
    let body: Value = upload(&fake, "sendDocument", form).await;
    assert_eq!(
        body["description"],
        "Bad Request: message caption is too long"
    );
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .part("document", reqwest::multipart::Part::bytes(b"x".to_vec()));
    let body: Value = upload(&fake, "sendDocument", form).await;
    assert_eq!(
        body["description"],
        "Bad Request: wrong file identifier/HTTP URL specified"
    );
    let description = err(&fake, "sendDocument", json!({"chat_id": USER}), 400).await;
    assert_eq!(
        description,
        "Bad Request: there is no document in the request"
    );
    // Sending the same file again by its id.
    let again = ok(
        &fake,
        "sendDocument",
        json!({"chat_id": USER, "document": file_id}),
    )
    .await;
    assert_eq!(again["document"]["file_id"], file_id);
    assert_eq!(fake.messages(USER).len(), 2);

    // A photo must be an image.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x02\x00\x00\x00\x03rest".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .part(
            "photo",
            reqwest::multipart::Part::bytes(png).file_name("p.png"),
        );
    let body: Value = upload(&fake, "sendPhoto", form).await;
    assert_eq!(body["result"]["photo"][0]["width"], 2, "{body}");
    assert_eq!(body["result"]["photo"][0]["height"], 3);
    let form = reqwest::multipart::Form::new()
        .text("chat_id", USER.to_string())
        .part(
            "photo",
            reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("p.png"),
        );
    let body: Value = upload(&fake, "sendPhoto", form).await;
    assert_eq!(body["description"], "Bad Request: IMAGE_PROCESS_FAILED");
}

#[tokio::test]
async fn get_file_and_download_of_an_added_file() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bytes = vec![7u8; 3000];
    fake.add_file("AgADfile1", "documents/notes.bin", bytes.clone());
    let file = ok(&fake, "getFile", json!({"file_id": "AgADfile1"})).await;
    assert_eq!(file["file_id"], "AgADfile1");
    assert_eq!(file["file_path"], "documents/notes.bin");
    assert_eq!(file["file_size"], 3000);
    assert!(file["file_unique_id"].is_string());

    let url = |token: &str, path: &str| format!("{}/file/bot{token}/{path}", fake.base_url());
    let response = http()
        .get(url(TOKEN, "documents/notes.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let response = http()
        .get(url(TOKEN, "documents/other.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = http()
        .get(url("1:wrong", "documents/notes.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    assert_eq!(
        err(&fake, "getFile", json!({"file_id": "nope"}), 400).await,
        "Bad Request: invalid file_id"
    );
    let downloads = fake.calls_to("file");
    assert_eq!(downloads.len(), 3);
    assert_eq!(
        downloads[0].params,
        json!({"file_path": "documents/notes.bin"})
    );
}

#[tokio::test]
async fn tokens_methods_and_encodings_are_checked_as_telegram_does() {
    let fake = FakeTelegram::start(TOKEN).await;
    let wrong = http()
        .post(format!("{}/bot1:wrong/getMe", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    assert_eq!(
        err(&fake, "sendCarrierPigeon", json!({}), 404).await,
        "Not Found: method not found"
    );

    let me = ok(&fake, "getMe", json!({})).await;
    assert_eq!(me["id"], 123456);
    assert_eq!(me["is_bot"], true);
    assert_eq!(me["username"], "fake_agent_bot");
    assert_eq!(fake.bot_id(), 123456);

    // Method names in any case; recorded as documented.
    ok(
        &fake,
        "SENDmessage",
        json!({"chat_id": USER, "text": "case"}),
    )
    .await;
    // Form body, and query string with GET.
    let response = http()
        .post(fake.api_url("sendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=4242&text=a+b%20%26+c&parse_mode=HTML")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a raw & is refused in HTML");
    let response = http()
        .post(fake.api_url("sendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=4242&text=a+b%20%26amp%3B+c&parse_mode=HTML")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = http()
        .get(format!(
            "{}?chat_id=4242&text=by%20query",
            fake.api_url("sendMessage")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let texts: Vec<String> = fake.messages(USER).into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["case", "a b & c", "by query"]);

    let calls = fake.calls();
    let methods: Vec<&str> = calls.iter().map(|call| call.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "getMe",
            "sendCarrierPigeon",
            "getMe",
            "sendMessage",
            "sendMessage",
            "sendMessage",
            "sendMessage"
        ]
    );
    assert_eq!(calls[0].status, 401);
    assert_eq!(fake.calls_to("sendmessage").len(), 4);
    assert_eq!(calls[4].params["chat_id"], "4242");
    assert_eq!(calls[4].int_param("chat_id"), Some(USER));

    // Chat actions.
    ok(
        &fake,
        "sendChatAction",
        json!({"chat_id": USER, "action": "typing"}),
    )
    .await;
    ok(
        &fake,
        "sendChatAction",
        json!({"chat_id": GROUP, "action": "upload_document"}),
    )
    .await;
    let description = err(
        &fake,
        "sendChatAction",
        json!({"chat_id": USER, "action": "dancing"}),
        400,
    )
    .await;
    assert_eq!(
        description,
        "Bad Request: wrong parameter action in request"
    );
    let description = err(&fake, "sendChatAction", json!({"action": "typing"}), 400).await;
    assert_eq!(description, "Bad Request: chat_id is empty");
    // Only HTML is modelled: Markdown is refused rather than passed unchecked.
    let markdown = json!({"chat_id": USER, "text": "*x*", "parse_mode": "MarkdownV2"});
    assert!(
        err(&fake, "sendMessage", markdown, 400)
            .await
            .contains("not modelled")
    );
}

#[tokio::test]
async fn allowed_updates_are_remembered_and_filter_what_is_delivered() {
    let fake = FakeTelegram::start(TOKEN).await;
    assert_eq!(fake.last_allowed_updates(), None);
    ok(&fake, "getUpdates", json!({"allowed_updates": ["message"]})).await;
    assert_eq!(
        fake.last_allowed_updates(),
        Some(vec!["message".to_string()])
    );
    fake.push_update(FakeTelegram::callback_query(USER, USER, 1, "x"));
    fake.push_update(FakeTelegram::private_message(USER, "text"));
    // A poll without allowed_updates keeps the last list.
    let updates = ok(&fake, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 1);
    assert_eq!(updates[0]["message"]["text"], "text");
    assert!(
        fake.unanswered_callbacks().is_empty(),
        "the callback was never delivered"
    );

    // Given as a form field, the list is JSON text.
    let response = http()
        .get(format!(
            "{}?allowed_updates=%5B%22message%22%2C%22callback_query%22%5D",
            fake.api_url("getUpdates")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        fake.last_allowed_updates(),
        Some(vec!["message".to_string(), "callback_query".to_string()])
    );
    fake.push_update(FakeTelegram::callback_query(USER, USER, 1, "y"));
    let updates = ok(
        &fake,
        "getUpdates",
        json!({"offset": updates[0]["update_id"].as_i64().unwrap() + 1}),
    )
    .await;
    assert_eq!(updates[0]["callback_query"]["data"], "y");
}

#[tokio::test]
async fn waiters_wake_on_calls_and_give_up_at_their_timeout() {
    let fake = FakeTelegram::start(TOKEN).await;
    let waiter = tokio::spawn({
        let fake = fake.clone();
        async move { fake.wait_for_call("sendMessage", LIMIT).await }
    });
    let message_waiter = tokio::spawn({
        let fake = fake.clone();
        async move {
            fake.wait_for_message(USER, |m| m.text == "second", LIMIT)
                .await
        }
    });
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": USER, "text": "first"}),
    )
    .await;
    let call = tokio::time::timeout(LIMIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(call.str_param("text"), Some("first"));
    let id = fake.messages(USER)[0].message_id;
    ok(
        &fake,
        "editMessageText",
        json!({"chat_id": USER, "message_id": id, "text": "second"}),
    )
    .await;
    let message = tokio::time::timeout(LIMIT, message_waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message.message_id, id);

    let two = |calls: &[agent_host_tests::fake_telegram::Call]| calls.len() >= 2;
    assert!(fake.wait_until(two, LIMIT).await);
    // Nothing will call these: the waits end at their (short) timeout.
    assert_eq!(
        fake.wait_for_call("sendPhoto", Duration::from_millis(50))
            .await,
        None
    );
    assert!(
        !fake
            .wait_until(|calls| calls.len() > 10, Duration::from_millis(50))
            .await
    );
}

#[tokio::test]
async fn the_server_stops_with_its_last_handle() {
    let fake = FakeTelegram::start(TOKEN).await;
    let clone = fake.clone();
    drop(fake);
    // A clone keeps it serving.
    ok(&clone, "getMe", json!({})).await;
    let url = clone.api_url("getMe");
    let poll = tokio::spawn({
        let clone = clone.clone();
        async move { api(&clone, "getUpdates", json!({"timeout": 600})).await }
    });
    assert!(clone.wait_for_poll(LIMIT).await);
    clone.shutdown();
    // The long poll ends (empty) instead of waiting out its timeout.
    let (status, body) = tokio::time::timeout(LIMIT, poll).await.unwrap().unwrap();
    assert_eq!((status, body["result"].clone()), (200, json!([])));
    drop(clone);
    let error = http().post(url).send().await.unwrap_err();
    assert!(error.is_connect() || error.is_request(), "{error:?}");
}

/// Cases from TDLib's own tests of its HTML parser (`check_parse_html` in
/// `test/message_entities.cpp`): the visible text and entities, or the error, Telegram
/// gives. Left out: where the fake is deliberately stricter (a `&` starting no supported
/// entity is kept as text by Telegram, refused by the fake) and `<a>` link normalisation.
#[test]
fn html_parsing_agrees_with_telegrams_own_test_cases() {
    let errors = [
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        (
            "🏟 🏟&lt;<abac aba>",
            "Unsupported start tag \"abac\" at byte offset 13",
        ),
        (
            "🏟 🏟&lt;<i   =aba>",
            "Empty attribute name in the tag \"i\" at byte offset 13",
        ),
        (
            "🏟 🏟&lt;<i    aba>",
            "Can't find end tag corresponding to start tag \"i\"",
        ),
        (
            "🏟 🏟&lt;<i    aba  =  ",
            "Unclosed start tag \"i\" at byte offset 13",
        ),
        (
            "🏟 🏟&lt;<i    aba  =  190azAz-.,",
            "Unexpected end of name token at byte offset 27",
        ),
        (
            "🏟 🏟&lt;<i    aba  =  \"&lt;&gt;&quot;>",
            "Unclosed start tag at byte offset 13",
        ),
        ("🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"),
        ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        (
            "🏟 🏟&lt;<i>a</em   >",
            "Unmatched end tag at byte offset 17, expected \"</i>\", found \"</em>\"",
        ),
        (
            "&#57311;",
            "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units",
        ),
    ];
    for (html, error) in errors {
        assert_eq!(
            parse_telegram_html(html),
            Err(error.to_string()),
            "{html:?}"
        );
    }
    let texts = [
        ("➡️ ➡️<i>➡️ ➡️</i>", "➡️ ➡️➡️ ➡️"),
        ("🏟 🏟<i>🏟 &lt🏟</i>", "🏟 🏟🏟 <🏟"),
        ("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>", "🏟 🏟🏟 ><🏟"),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.   >a</i>", "🏟 🏟<a"),
        ("🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;'>a</>", "🏟 🏟<a"),
        ("🏟 🏟&lt;<i>a</    >", "🏟 🏟<a"),
        (
            "➡️ ➡️<span class = \"tg-spoiler\">➡️ ➡️</span><b>➡️ ➡️</b>",
            "➡️ ➡️➡️ ➡️➡️ ➡️",
        ),
        ("<a   href=  'telegram.org?&lt;'   > </a>", " "),
        (
            "🏟 🏟&lt;<pre><code class=\"language-fift\">🏟 🏟&lt;</></>",
            "🏟 🏟<🏟 🏟<",
        ),
        (
            "➡️ ➡️<tg-emoji emoji-id = \"12345\">➡️ ➡️</tg-emoji><b>➡️ ➡️</b>",
            "➡️ ➡️➡️ ➡️➡️ ➡️",
        ),
        (
            "<blockquote   cite=\"\" askdlbas nasjdbaj nj12b3>a&lt;<pre  >b;</></>",
            "a<b;",
        ),
        (
            "<blockquote   expandable=false>a&lt;<pre  >b;</></>",
            "a<b;",
        ),
        ("<i>\t</i>", "\t"),
    ];
    for (html, text) in texts {
        assert_eq!(parse_telegram_html(html).as_deref(), Ok(text), "{html:?}");
    }
}

/// The entities Telegram reports for the same cases, as the fake answers a sendMessage.
#[tokio::test]
async fn entities_agree_with_telegrams_own_test_cases() {
    let fake = FakeTelegram::start(TOKEN).await;
    let cases = [
        (
            "🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>",
            json!([
            {"type": "italic", "offset": 5, "length": 7}, {"type": "bold", "offset": 9, "length": 3}]),
        ),
        (
            "🏟 🏟&lt;<pre><code>🏟 🏟&lt;</code></>",
            json!([
            {"type": "pre", "offset": 6, "length": 6}, {"type": "code", "offset": 6, "length": 6}]),
        ),
        (
            "🏟 🏟&lt;<pre><code class=\"language-fift\">🏟 🏟&lt;</></>",
            json!([
            {"type": "pre", "offset": 6, "length": 6, "language": "fift"}]),
        ),
        // (A "." after the pre: a message's trailing space would be trimmed.)
        (
            "🏟 🏟&lt;<pre><code class=\"language-fift\">🏟 🏟&lt;</> </>.",
            json!([
            {"type": "pre", "offset": 6, "length": 7}, {"type": "code", "offset": 6, "length": 6}]),
        ),
        (
            "🏟 🏟&lt;<pre> <code class=\"language-fift\">🏟 🏟&lt;</></>",
            json!([
            {"type": "pre", "offset": 6, "length": 7}, {"type": "code", "offset": 7, "length": 6}]),
        ),
        (
            "🏟 🏟<b aba   =   caba><tg-emoji emoji-id=\"1\">🏟</tg-emoji>1</b>",
            json!([
            {"type": "bold", "offset": 5, "length": 3},
            {"type": "custom_emoji", "offset": 5, "length": 2, "custom_emoji_id": "1"}]),
        ),
        (
            "<blockquote   expandable   asd>a&lt;<pre  >b;</></>",
            json!([
            {"type": "expandable_blockquote", "offset": 0, "length": 4}, {"type": "pre", "offset": 2, "length": 2}]),
        ),
        ("🏟 🏟&lt;<b></b>", Value::Null),
    ];
    for (html, entities) in cases {
        let (status, body) = send_html(&fake, USER, html).await;
        assert_eq!(status, 200, "{html:?}: {body}");
        assert_eq!(body["result"]["entities"], entities, "{html:?}");
    }
}
