//! Text helpers every layer uses: shortening user input quoted in messages. A leaf module: it imports nothing
//! of the crate.

/// Cuts user text quoted in messages to a readable length (on a character boundary).
pub(crate) fn shorten(text: &str) -> String {
    const LIMIT: usize = 64;
    if text.chars().count() <= LIMIT {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(LIMIT).collect();
    out.push('…');
    out
}
