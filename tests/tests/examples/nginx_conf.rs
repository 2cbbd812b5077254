//! Just enough of nginx's configuration syntax to read the example back:
//! statements ending in `;`, blocks, `#` comments, and quoted arguments with
//! nginx's unescaping (so a test sees what nginx passes to the filter).

/// One simple directive, e.g. `shm_kv * 64m;`, with the blocks around it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Names of the enclosing blocks, outermost first (`["http", "server", "location"]`).
    pub context: Vec<String>,
    pub args: Vec<String>,
}

enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' => out.push(Token::Semicolon),
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            '\'' | '"' => {
                let quote = c;
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => panic!("unterminated {quote}-quoted string"),
                        Some(c) if c == quote => break,
                        // nginx unescapes these inside quotes and keeps any
                        // other backslash as is.
                        Some('\\') => match chars.peek() {
                            Some(&e @ ('"' | '\'' | '\\')) => {
                                word.push(e);
                                chars.next();
                            }
                            Some('t') => {
                                word.push('\t');
                                chars.next();
                            }
                            Some('r') => {
                                word.push('\r');
                                chars.next();
                            }
                            Some('n') => {
                                word.push('\n');
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some(c) => word.push(c),
                    }
                }
                out.push(Token::Word(word));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ';' | '{' | '}') {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    out
}

/// Every simple directive in the file, in order.
pub fn statements(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut context: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    for token in tokens(text) {
        match token {
            Token::Word(w) => args.push(w),
            Token::Semicolon => out.push(Statement {
                context: context.clone(),
                args: std::mem::take(&mut args),
            }),
            Token::Open => {
                context.push(args.first().cloned().unwrap_or_default());
                args.clear();
            }
            Token::Close => {
                assert!(
                    args.is_empty(),
                    "directive without ';' before '}}': {args:?}"
                );
                assert!(context.pop().is_some(), "unbalanced '}}'");
            }
        }
    }
    assert!(
        context.is_empty() && args.is_empty(),
        "unterminated block or directive"
    );
    out
}
