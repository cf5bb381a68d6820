//! A reader for the protobuf text format, the syntax of `.textproto` files.
//!
//! It turns text into an untyped tree of fields ([`TextMessage`]) that remembers the
//! line and column of every field, so that the schema-aware layer
//! ([`super::config`]) can reject unknown fields, wrong types and repeated singular
//! fields with a message that points at the place in the file.
//!
//! Supported: `#` comments; `name: value`, `name { ... }`, `name: { ... }` and
//! `name < ... >`; optional `,` or `;` after a field; list values `name: [a, b]`;
//! numbers (decimal, exponent, `inf`/`nan`, a trailing `f`, hexadecimal integers);
//! identifiers (enum values, booleans); single- or double-quoted strings with the
//! usual escapes, adjacent strings concatenated. Not supported (rejected with an error):
//! extension and `Any` field names in brackets.
//!
//! Messages nest at most [`MAX_TEXT_NESTING`] deep (deeper input is an error, not a
//! stack overflow), and errors quote at most [`crate::limits::MAX_QUOTE_CHARS`]
//! characters of a token.

use std::fmt;

use crate::limits::{MAX_TEXT_NESTING, quote};

/// A parse failure, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based, in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Where a field starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based).
    pub column: usize,
}

impl Position {
    /// An error at this position.
    pub fn error(self, message: impl Into<String>) -> TextError {
        TextError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// What kind of token a scalar was written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    /// A number, possibly signed (`-12`, `0.1`, `1e-3`, `-inf`).
    Number,
    /// A bare identifier (`true`, `TYPE_VEHICLE`).
    Identifier,
    /// A quoted string (escapes already resolved).
    String,
}

/// One scalar value as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The token's text (for strings: the decoded content).
    pub text: String,
    /// Its kind.
    pub kind: ScalarKind,
    /// Where it starts.
    pub position: Position,
}

/// A field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum TextValue {
    /// A scalar.
    Scalar(Scalar),
    /// A nested message.
    Message(TextMessage),
}

/// One `name: value` (or `name { ... }`) entry.
#[derive(Clone, Debug, PartialEq)]
pub struct TextField {
    /// The field name.
    pub name: String,
    /// Where the name starts.
    pub position: Position,
    /// The value.
    pub value: TextValue,
}

/// A message: its fields in file order (a list value `name: [a, b]` becomes one field
/// per element).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextMessage {
    /// The fields.
    pub fields: Vec<TextField>,
}

/// Parses a whole text-format document.
///
/// # Errors
/// A [`TextError`] at the first offending token.
pub fn parse(text: &str) -> Result<TextMessage, TextError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        next: 0,
        depth: 0,
    };
    let msg = p.message(None)?;
    Ok(msg)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    Punct(char),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: Position,
}

fn tokenize(text: &str) -> Result<Vec<Token>, TextError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advances over `n` characters, keeping line and column.
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while let Some(&c) = chars.get(i) {
        let pos = Position { line, column: col };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
        } else if c == '#' {
            while chars.get(i).is_some_and(|&c| c != '\n') {
                advance(&mut i, &mut line, &mut col, 1);
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            col += i - start;
            tokens.push(Token {
                tok: Tok::Ident(word),
                pos,
            });
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.')
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '.'))
        {
            // A number, or a signed identifier such as `-inf`.
            let start = i;
            i += 1;
            while let Some(&n) = chars.get(i) {
                let prev = chars[i - 1];
                let exp_sign = (n == '-' || n == '+') && (prev == 'e' || prev == 'E');
                if n.is_ascii_alphanumeric() || n == '.' || n == '_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            let word: String = chars[start..i].iter().collect();
            col += i - start;
            tokens.push(Token {
                tok: Tok::Number(word),
                pos,
            });
        } else if c == '"' || c == '\'' {
            let quote = c;
            advance(&mut i, &mut line, &mut col, 1);
            let mut s = String::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(pos.error("unterminated string"));
                };
                if c == '\n' {
                    return Err(pos.error("newline inside a string"));
                }
                advance(&mut i, &mut line, &mut col, 1);
                if c == quote {
                    break;
                }
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                let Some(&e) = chars.get(i) else {
                    return Err(pos.error("unterminated string"));
                };
                advance(&mut i, &mut line, &mut col, 1);
                match e {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    '\\' | '\'' | '"' | '?' => s.push(e),
                    'a' => s.push('\u{7}'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'v' => s.push('\u{b}'),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.get(i).and_then(|c| c.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    advance(&mut i, &mut line, &mut col, 1);
                                }
                                None => break,
                            }
                        }
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    'x' => {
                        let mut v = 0u32;
                        let mut n = 0;
                        while n < 2 {
                            match chars.get(i).and_then(|c| c.to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    advance(&mut i, &mut line, &mut col, 1);
                                    n += 1;
                                }
                                None => break,
                            }
                        }
                        if n == 0 {
                            return Err(pos.error("`\\x` escape without hex digits"));
                        }
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    other => return Err(pos.error(format!("unknown escape `\\{other}`"))),
                }
            }
            // Adjacent string literals concatenate.
            if let Some(Token {
                tok: Tok::Str(prev),
                ..
            }) = tokens.last_mut()
            {
                prev.push_str(&s);
            } else {
                tokens.push(Token {
                    tok: Tok::Str(s),
                    pos,
                });
            }
        } else if matches!(c, ':' | '{' | '}' | '<' | '>' | ',' | ';' | '[' | ']') {
            advance(&mut i, &mut line, &mut col, 1);
            tokens.push(Token {
                tok: Tok::Punct(c),
                pos,
            });
        } else {
            return Err(pos.error(format!("unexpected character `{c}`")));
        }
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: Position { line, column: col },
    });
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Messages open around the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with `End`, and `bump` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::End {
            self.next += 1;
        }
        t
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    /// A nested message opened at `open`, until `close`.
    fn sub_message(&mut self, close: char, open: Position) -> Result<TextMessage, TextError> {
        if self.depth >= MAX_TEXT_NESTING {
            return Err(open.error(format!("messages nested more than {MAX_TEXT_NESTING} deep")));
        }
        self.depth += 1;
        let m = self.message(Some((close, open)));
        self.depth -= 1;
        m
    }

    /// Fields until `close` (or the end of input at top level).
    fn message(&mut self, close: Option<(char, Position)>) -> Result<TextMessage, TextError> {
        let mut msg = TextMessage::default();
        loop {
            let t = self.peek().clone();
            match (&t.tok, close) {
                (Tok::End, None) => return Ok(msg),
                (Tok::End, Some((c, open))) => {
                    return Err(
                        open.error(format!("message opened here is never closed with `{c}`"))
                    );
                }
                (Tok::Punct(p), Some((c, _))) if *p == c => {
                    self.bump();
                    return Ok(msg);
                }
                (Tok::Ident(_), _) => self.field(&mut msg)?,
                (Tok::Punct('['), _) => {
                    return Err(t
                        .pos
                        .error("extension and Any field names are not supported"));
                }
                (other, _) => {
                    return Err(t
                        .pos
                        .error(format!("expected a field name, found {}", describe(other))));
                }
            }
        }
    }

    fn field(&mut self, msg: &mut TextMessage) -> Result<(), TextError> {
        let name_tok = self.bump();
        let Tok::Ident(name) = name_tok.tok else {
            return Err(name_tok.pos.error("expected a field name"));
        };
        let position = name_tok.pos;
        let had_colon = self.is_punct(':');
        if had_colon {
            self.bump();
        }
        if self.is_punct('{') || self.is_punct('<') {
            let open = self.bump();
            let close = if open.tok == Tok::Punct('{') {
                '}'
            } else {
                '>'
            };
            let sub = self.sub_message(close, open.pos)?;
            msg.fields.push(TextField {
                name,
                position,
                value: TextValue::Message(sub),
            });
        } else if !had_colon {
            let t = self.peek();
            return Err(t.pos.error(format!(
                "expected `:` or `{{` after field `{}`, found {}",
                quote(&name),
                describe(&t.tok)
            )));
        } else if self.is_punct('[') {
            let open = self.bump();
            if self.is_punct(']') {
                self.bump();
            } else {
                loop {
                    let value = if self.is_punct('{') || self.is_punct('<') {
                        let o = self.bump();
                        let close = if o.tok == Tok::Punct('{') { '}' } else { '>' };
                        TextValue::Message(self.sub_message(close, o.pos)?)
                    } else {
                        TextValue::Scalar(self.scalar()?)
                    };
                    msg.fields.push(TextField {
                        name: name.clone(),
                        position,
                        value,
                    });
                    if self.is_punct(',') {
                        self.bump();
                    } else if self.is_punct(']') {
                        self.bump();
                        break;
                    } else {
                        return Err(open.pos.error("list opened here is not closed with `]`"));
                    }
                }
            }
        } else {
            let value = self.scalar()?;
            msg.fields.push(TextField {
                name,
                position,
                value: TextValue::Scalar(value),
            });
        }
        if self.is_punct(',') || self.is_punct(';') {
            self.bump();
        }
        Ok(())
    }

    fn scalar(&mut self) -> Result<Scalar, TextError> {
        let t = self.bump();
        let (text, kind) = match t.tok {
            Tok::Number(s) => (s, ScalarKind::Number),
            Tok::Ident(s) => (s, ScalarKind::Identifier),
            Tok::Str(s) => (s, ScalarKind::String),
            other => {
                return Err(t
                    .pos
                    .error(format!("expected a value, found {}", describe(&other))));
            }
        };
        Ok(Scalar {
            text,
            kind,
            position: t.pos,
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{}`", quote(s)),
        Tok::Number(s) => format!("number `{}`", quote(s)),
        Tok::Str(s) => format!("string {:?}", quote(s)),
        Tok::Punct(c) => format!("`{c}`"),
        Tok::End => "the end of the file".to_string(),
    }
}

impl Scalar {
    /// The value as a protobuf `float`/`double` (decimal, exponent, `inf`, `nan`, a
    /// trailing `f`, integers).
    ///
    /// # Errors
    /// When the token is not a number.
    pub fn as_f64(&self) -> Result<f64, TextError> {
        let bad = || {
            self.position
                .error(format!("expected a number, found `{}`", quote(&self.text)))
        };
        if self.kind == ScalarKind::String {
            return Err(bad());
        }
        let (neg, body) = match self.text.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, self.text.strip_prefix('+').unwrap_or(&self.text)),
        };
        let lower = body.to_ascii_lowercase();
        let v = match lower.as_str() {
            "inf" | "infinity" | "inff" | "infinityf" => f64::INFINITY,
            "nan" | "nanf" => f64::NAN,
            _ => {
                if self.kind == ScalarKind::Identifier {
                    return Err(bad());
                }
                if let Some(hex) = lower.strip_prefix("0x") {
                    u64::from_str_radix(hex, 16).map_err(|_| bad())? as f64
                } else {
                    let digits = if lower.ends_with('f') && !lower.starts_with("0x") {
                        &lower[..lower.len() - 1]
                    } else {
                        &lower[..]
                    };
                    digits.parse::<f64>().map_err(|_| bad())?
                }
            }
        };
        Ok(if neg { -v } else { v })
    }

    /// The value as a protobuf integer (decimal, `0x` hexadecimal, `0` octal).
    ///
    /// # Errors
    /// When the token is not an integer.
    pub fn as_i64(&self) -> Result<i64, TextError> {
        let bad = || {
            self.position.error(format!(
                "expected an integer, found `{}`",
                quote(&self.text)
            ))
        };
        if self.kind != ScalarKind::Number {
            return Err(bad());
        }
        let (neg, body) = match self.text.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, self.text.strip_prefix('+').unwrap_or(&self.text)),
        };
        let lower = body.to_ascii_lowercase();
        let magnitude = if let Some(hex) = lower.strip_prefix("0x") {
            i128::from_str_radix(hex, 16).map_err(|_| bad())?
        } else if lower.len() > 1 && lower.starts_with('0') {
            i128::from_str_radix(&lower[1..], 8).map_err(|_| bad())?
        } else {
            lower.parse::<i128>().map_err(|_| bad())?
        };
        let v = if neg { -magnitude } else { magnitude };
        i64::try_from(v).map_err(|_| bad())
    }

    /// The value as a protobuf `bool` (`true`, `false`, `True`, `False`, `t`, `f`, `1`,
    /// `0`).
    ///
    /// # Errors
    /// When the token is not a boolean.
    pub fn as_bool(&self) -> Result<bool, TextError> {
        match (self.kind, self.text.as_str()) {
            (ScalarKind::Identifier, "true" | "True" | "t") | (ScalarKind::Number, "1") => Ok(true),
            (ScalarKind::Identifier, "false" | "False" | "f") | (ScalarKind::Number, "0") => {
                Ok(false)
            }
            _ => Err(self
                .position
                .error(format!("expected a boolean, found `{}`", quote(&self.text)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(m: &TextMessage, i: usize) -> &Scalar {
        match &m.fields[i].value {
            TextValue::Scalar(s) => s,
            TextValue::Message(_) => panic!("not a scalar"),
        }
    }

    #[test]
    fn nested_messages_comments_and_separators() {
        let text = "# header\nouter: {\n  inner { x: -1.5e-3; y: 40, }\n  flag: true # c\n}\nz < w: 'a\\tb' \"c\" >\nlist: [1, 2, 0x10]\n";
        let m = parse(text).unwrap();
        assert_eq!(m.fields.len(), 5);
        let TextValue::Message(outer) = &m.fields[0].value else {
            panic!()
        };
        assert_eq!(m.fields[0].position, Position { line: 2, column: 1 });
        let TextValue::Message(inner) = &outer.fields[0].value else {
            panic!()
        };
        assert_eq!(scalar(inner, 0).as_f64().unwrap(), -1.5e-3);
        assert_eq!(scalar(inner, 1).as_f64().unwrap(), 40.0);
        assert_eq!(scalar(inner, 1).as_i64().unwrap(), 40);
        assert_eq!(
            inner.fields[1].position,
            Position {
                line: 3,
                column: 23
            }
        );
        assert!(scalar(outer, 1).as_bool().unwrap());
        let TextValue::Message(z) = &m.fields[1].value else {
            panic!()
        };
        assert_eq!(scalar(z, 0).text, "a\tbc");
        let list: Vec<i64> = (2..5).map(|i| scalar(&m, i).as_i64().unwrap()).collect();
        assert_eq!(list, vec![1, 2, 16]);
    }

    #[test]
    fn special_numbers() {
        let m = parse("a: -inf b: nan c: 1.5f d: .5 e: 012 f: -0x1F").unwrap();
        assert_eq!(scalar(&m, 0).as_f64().unwrap(), f64::NEG_INFINITY);
        assert!(scalar(&m, 1).as_f64().unwrap().is_nan());
        assert_eq!(scalar(&m, 2).as_f64().unwrap(), 1.5);
        assert_eq!(scalar(&m, 3).as_f64().unwrap(), 0.5);
        assert_eq!(scalar(&m, 4).as_i64().unwrap(), 10);
        assert_eq!(scalar(&m, 5).as_i64().unwrap(), -31);
        assert!(scalar(&m, 2).as_i64().is_err());
        assert!(scalar(&m, 0).as_bool().is_err());
    }

    #[test]
    fn errors_point_at_the_place() {
        let e = parse("a {\n  b: 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 3));
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse("a: 1\nb 2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        let e = parse("a: 'x\n'").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("a: 1 }").unwrap_err();
        assert_eq!((e.line, e.column), (1, 6));
        let e = parse("[ext.x]: 1").unwrap_err();
        assert!(e.message.contains("extension"));
        let e = parse("a: @").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let ok = format!(
            "{}{}",
            "a {".repeat(MAX_TEXT_NESTING),
            "}".repeat(MAX_TEXT_NESTING)
        );
        parse(&ok).unwrap();
        for open in ["a {", "a <", "a: [{"] {
            let deep = open.repeat(1_000_000);
            let e = parse(&deep).unwrap_err();
            assert!(e.message.contains("nested more than"), "{e}");
        }
    }

    #[test]
    fn errors_quote_a_short_piece_of_a_long_token() {
        let long = "x".repeat(10_000_000);
        for text in [
            format!("a: {long}"),
            format!("a: 1{long}"),
            format!("{long} 1"),
        ] {
            let m = parse(&text);
            let e = match m {
                Err(e) => e.to_string(),
                Ok(m) => scalar(&m, 0).as_f64().unwrap_err().to_string(),
            };
            assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..200]);
        }
        let e = parse(&format!("a: {long} ]")).unwrap_err().to_string();
        assert!(e.len() < 300, "{} bytes", e.len());
    }

    #[test]
    fn empty_messages_and_documents() {
        assert!(parse("").unwrap().fields.is_empty());
        assert!(parse("# only a comment").unwrap().fields.is_empty());
        let m = parse("bernoulli: {}").unwrap();
        assert_eq!(
            m.fields[0].value,
            TextValue::Message(TextMessage::default())
        );
    }
}
