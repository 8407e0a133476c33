//! The standby page's HTML, rendered on the server from the policy's page view.
//!
//! Every value is escaped; the page has no inline script or style (the CSP forbids them) and reads completely
//! without JavaScript. It shows only what the view holds, which the policy limits to the host's own license.

use policy_core::api::license::RouteState;
use policy_core::api::standby::PageView;
use policy_core::api::{Duration, Timestamp};

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The policy's one-line messages start in lowercase; on a page they are sentences.
pub(super) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Renders `text` as a sentence, turning `` `name` `` spans into `<code>` (policy messages quote names that way).
fn message(text: &str) -> String {
    let text = sentence(text);
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

fn when(text: &str) -> String {
    match Timestamp::parse(text) {
        Ok(t) => {
            let s = t.to_string();
            let shown = format!("{} {} UTC", s.get(..10).unwrap_or(&s), s.get(11..16).unwrap_or_default());
            format!("<time datetime=\"{}\">{}</time>", escape(&s), escape(&shown))
        }
        Err(_) => escape(text),
    }
}

fn ago(text: &str, now: Timestamp) -> String {
    match Timestamp::parse(text) {
        Ok(t) => {
            let secs = now.seconds_since(t);
            Duration::from_seconds(secs - secs % 60).to_string()
        }
        Err(_) => String::new(),
    }
}

/// A notice for the outcome of a form POST without JavaScript (`/?result=<code>`); unknown codes show nothing.
pub(super) fn result_notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "switch" => {
            "The switch was requested. This page becomes the game in a minute or two, once the platform has \
                     routed it."
        }
        "request" => "Your request was recorded. An operator of this license has to approve it.",
        "pending" => "A request for this instance already waits for approval.",
        "refused" => "This instance cannot be requested right now.",
        "limited" => "Too many requests. Please wait a while and try again.",
        "failed" => "The request could not be recorded. Please try again later.",
        "expired" => "The page had expired. Please try again.",
        _ => return None,
    })
}

const HEAD: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<link rel=\"stylesheet\" href=\"/assets/standby.css\">\n";

/// The page for an instance on standby.
pub(super) fn page(view: &PageView, csrf: &str, notice: Option<&str>, now: Timestamp) -> String {
    let instance = escape(&view.instance);
    let mut h = String::new();
    h.push_str(HEAD);
    h.push_str(&format!("<title>{instance} is on standby</title>\n"));
    h.push_str("<script src=\"/assets/standby.js\" defer></script>\n</head>\n<body>\n");
    h.push_str("<header><p class=\"brand\">Foundry VTT</p></header>\n<main id=\"main\">\n");
    if view.state == RouteState::Active {
        h.push_str(&format!(
            "<h1><code>{instance}</code> is becoming active</h1>\n<p class=\"lead\">The platform is switching this \
             address to the game. Reload in a minute.</p>\n"
        ));
    } else {
        h.push_str(&format!(
            "<h1><code>{instance}</code> is on standby</h1>\n<p class=\"lead\">This game server is not the active \
             one of its license right now, so this address shows this page instead of the game.</p>\n"
        ));
    }
    if let Some(at) = &view.scheduled_delete_at {
        h.push_str(&format!(
            "<section class=\"notice warning\" aria-labelledby=\"deletion\"><h2 id=\"deletion\">Scheduled for \
             deletion</h2><p>This instance will be deleted on {}.</p></section>\n",
            when(at)
        ));
    }

    h.push_str("<section aria-labelledby=\"facts\"><h2 id=\"facts\">License</h2>\n<dl class=\"facts\">\n");
    h.push_str(&format!("<dt>License</dt><dd><code>{}</code></dd>\n", escape(&view.license)));
    match (&view.active_instance, &view.active_hostname) {
        (Some(active), Some(host)) => h.push_str(&format!(
            "<dt>Active instance</dt><dd><a href=\"https://{}/\"><code>{}</code></a></dd>\n",
            escape(host),
            escape(active)
        )),
        _ => h.push_str("<dt>Active instance</dt><dd>none</dd>\n"),
    }
    if view.active_instance.is_some() {
        let players = match view.active_players {
            Some(0) => "nobody is connected".to_owned(),
            Some(1) => "1 player connected".to_owned(),
            Some(n) => format!("{n} players connected"),
            None => "unknown".to_owned(),
        };
        h.push_str(&format!("<dt>Players on it</dt><dd id=\"players\">{players}</dd>\n"));
        if let Some(since) = &view.active_idle_since {
            h.push_str(&format!(
                "<dt>Idle since</dt><dd id=\"idle\">{} ({} ago)</dd>\n",
                when(since),
                escape(&ago(since, now))
            ));
        }
        if let Some(checked) = &view.active_checked_at {
            h.push_str(&format!("<dt>Last checked</dt><dd>{}</dd>\n", when(checked)));
        }
    }
    h.push_str("</dl>\n</section>\n");

    if let Some(switch) = &view.switch {
        let to = if switch.to.is_empty() {
            "a deactivation".to_owned()
        } else {
            format!("a switch to <code>{}</code>", escape(&switch.to))
        };
        let since = switch.blocked_since.as_deref().map(|s| format!(" since {}", when(s))).unwrap_or_default();
        h.push_str(&format!(
            "<section class=\"notice\" aria-labelledby=\"switch\"><h2 id=\"switch\">Switch pending</h2><p>The \
             license asks for {to}{since}.</p><p>{}</p></section>\n",
            message(&switch.message)
        ));
    }
    let other_warnings: Vec<_> = view.warnings.iter().filter(|w| !w.code.starts_with("SwitchBlocked")).collect();
    if !other_warnings.is_empty() {
        h.push_str("<section aria-labelledby=\"warnings\"><h2 id=\"warnings\">Warnings</h2><ul>\n");
        for w in other_warnings {
            h.push_str(&format!("<li>{}</li>\n", message(&w.message)));
        }
        h.push_str("</ul></section>\n");
    }

    let a = &view.activation;
    if a.mode != "disabled" {
        h.push_str("<section aria-labelledby=\"activation\"><h2 id=\"activation\">Activation</h2>\n");
        if let Some(p) = &a.pending_request {
            h.push_str(&format!(
                "<p>A request to activate this instance waits for approval until {}.</p>\n",
                when(&p.expires_at)
            ));
        } else {
            h.push_str(&format!("<p id=\"activation-hint\">{}</p>\n", message(&a.message)));
        }
        if a.button {
            h.push_str(&format!(
                "<form method=\"post\" action=\"/activate\" id=\"activate-form\">\n<input type=\"hidden\" \
                 name=\"csrf\" value=\"{}\">\n<button type=\"submit\" id=\"activate\" \
                 aria-describedby=\"activation-hint\">Request activation</button>\n</form>\n",
                escape(csrf)
            ));
        }
        h.push_str("</section>\n");
    }
    h.push_str("<p id=\"result\" role=\"status\" aria-live=\"polite\">");
    if let Some(n) = notice {
        h.push_str(&escape(n));
    }
    h.push_str("</p>\n</main>\n");
    h.push_str("<footer><p>Served by the Foundry VTT platform's standby page.</p></footer>\n</body>\n</html>\n");
    h
}

/// The page for any host that names no instance: the same bytes whatever was asked.
pub(super) fn not_found() -> String {
    format!(
        "{HEAD}<title>Not found</title>\n</head>\n<body>\n<main id=\"main\">\n<h1>Not found</h1>\n<p>There is no \
         game server at this address.</p>\n</main>\n</body>\n</html>\n"
    )
}

/// The page while the cluster cannot be read.
pub(super) fn unavailable() -> String {
    format!(
        "{HEAD}<title>Temporarily unavailable</title>\n</head>\n<body>\n<main id=\"main\">\n<h1>Temporarily \
         unavailable</h1>\n<p>Please try again in a minute.</p>\n</main>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::api::standby::{ActivationOutcome, ActivationView, PageView};
    use policy_core::model::Warning;

    #[test]
    fn every_value_is_escaped() {
        let hostile = "<script>alert(1)</script>\"'&";
        let view = PageView {
            instance: "beta".into(),
            license: hostile.into(),
            hostname: "beta.example.com".into(),
            state: RouteState::Standby,
            active_instance: Some(hostile.into()),
            active_hostname: Some(format!("{hostile}.example.com")),
            active_players: None,
            active_idle_since: Some(hostile.into()),
            active_checked_at: None,
            switch: None,
            warnings: vec![Warning { code: "X".into(), message: format!("`{hostile}` {hostile}") }],
            scheduled_delete_at: Some(hostile.into()),
            activation: ActivationView {
                mode: "request".into(),
                button: true,
                outcome: ActivationOutcome::Request,
                reason: "ApprovalNeeded".into(),
                message: hostile.into(),
                pending_request: None,
            },
        };
        let html = page(&view, hostile, Some(hostile), Timestamp::from_unix_clamped(0));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("\"'&\""), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"), "{html}");
    }
}
