//! The commands a node takes at its prompt, as a table: each has a name,
//! what follows it, a line of help and a parser for the rest of the line.
//! One implementation serves every algorithm's prompt (`lock`, `add l2`)
//! and the chat UIs' slash commands (`/gen on`, where a line without the
//! slash is a message). `help` and `quit` come with every table; `help`'s
//! text is generated from the table, and unknown input gets a hint.

use std::fmt::Write as _;

type Parser<C> = Box<dyn Fn(&str) -> Result<C, String> + Send + Sync>;

struct Command<C> {
    name: &'static str,
    aliases: &'static [&'static str],
    args: &'static str,
    help: &'static str,
    parse: Parser<C>,
}

/// What a line of input asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<C> {
    Empty,
    Run(C),
    Help,
    Quit,
    /// A mistake, with a message for the user.
    Error(String),
}

pub struct Commands<C> {
    prefix: &'static str,
    list: Vec<Command<C>>,
    /// For chat-style tables: what a line that is not a command becomes.
    text: Option<Parser<C>>,
    quit_help: &'static str,
}

impl<C> Commands<C> {
    /// A table of commands typed as words (`lock`).
    pub fn new() -> Self {
        Commands {
            prefix: "",
            list: Vec::new(),
            text: None,
            quit_help: "stop this node (Ctrl-D, Ctrl-C and SIGTERM do too)",
        }
    }

    /// A chat-style table: commands start with `/`; any other line is text
    /// for `text` (a line starting with `//` is text starting with `/`).
    pub fn chat(text: impl Fn(&str) -> Result<C, String> + Send + Sync + 'static) -> Self {
        Commands {
            prefix: "/",
            list: Vec::new(),
            text: Some(Box::new(text)),
            quit_help: "leave (Ctrl-C and SIGTERM do too)",
        }
    }

    pub fn quit_help(mut self, help: &'static str) -> Self {
        self.quit_help = help;
        self
    }

    /// A command with arguments: `parse` gets the rest of the line (trimmed).
    pub fn with(
        mut self,
        name: &'static str,
        args: &'static str,
        help: &'static str,
        parse: impl Fn(&str) -> Result<C, String> + Send + Sync + 'static,
    ) -> Self {
        self.list.push(Command {
            name,
            aliases: &[],
            args,
            help,
            parse: Box::new(parse),
        });
        self
    }

    /// A command that takes nothing after its name.
    pub fn simple(
        self,
        name: &'static str,
        help: &'static str,
        cmd: impl Fn() -> C + Send + Sync + 'static,
    ) -> Self {
        self.with(name, "", help, move |rest| {
            if rest.is_empty() {
                Ok(cmd())
            } else {
                Err(format!("`{name}` takes nothing after it"))
            }
        })
    }

    /// Other names for the last command added.
    pub fn alias(mut self, aliases: &'static [&'static str]) -> Self {
        if let Some(c) = self.list.last_mut() {
            c.aliases = aliases;
        }
        self
    }

    pub fn parse(&self, line: &str) -> Parsed<C> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Parsed::Empty;
        }
        let body = if self.prefix.is_empty() {
            trimmed
        } else if let Some(rest) = trimmed.strip_prefix(self.prefix)
            && !rest.starts_with(self.prefix)
        {
            rest
        } else {
            let text = line
                .trim_end_matches(['\r', '\n'])
                .strip_prefix(self.prefix)
                .filter(|t| t.starts_with(self.prefix))
                .unwrap_or(line.trim_end_matches(['\r', '\n']));
            return match &self.text {
                Some(f) => match f(text) {
                    Ok(c) => Parsed::Run(c),
                    Err(e) => Parsed::Error(e),
                },
                None => Parsed::Empty,
            };
        };
        let (word, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let (word, rest) = (word.to_lowercase(), rest.trim());
        match word.as_str() {
            "help" | "?" => return Parsed::Help,
            "quit" | "exit" if rest.is_empty() => return Parsed::Quit,
            "quit" | "exit" => {
                return Parsed::Error(format!(
                    "`{}{word}` takes nothing after it (type `{}{word}` alone to leave)",
                    self.prefix, self.prefix
                ));
            }
            _ => {}
        }
        match self
            .list
            .iter()
            .find(|c| c.name == word || c.aliases.contains(&word.as_str()))
        {
            Some(c) => match (c.parse)(rest) {
                Ok(cmd) => Parsed::Run(cmd),
                Err(e) if c.args.is_empty() => Parsed::Error(e),
                Err(e) => {
                    Parsed::Error(format!("{e} (usage: {}{} {})", self.prefix, c.name, c.args))
                }
            },
            None => Parsed::Error(self.unknown(&word)),
        }
    }

    fn unknown(&self, word: &str) -> String {
        let shown: String = word.chars().take(40).collect();
        let near = self
            .all_names()
            .into_iter()
            .map(|n| (distance(word, n), n))
            .filter(|&(d, n)| d <= 2 && d < n.len())
            .min();
        let hint = match near {
            Some((_, n)) => format!("did you mean `{}{n}`? ", self.prefix),
            None => String::new(),
        };
        format!(
            "unknown command {shown:?}; {hint}commands: {} (`{}help` explains them)",
            self.names(),
            self.prefix
        )
    }

    fn all_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.list.iter().map(|c| c.name).collect();
        v.extend(["help", "quit"]);
        v
    }

    /// `start, lock, unlock, status, help, quit`
    pub fn names(&self) -> String {
        self.all_names()
            .iter()
            .map(|n| format!("{}{n}", self.prefix))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The generated `help` text: one aligned line per command.
    pub fn help(&self) -> String {
        let mut rows: Vec<(String, &str)> = self
            .list
            .iter()
            .map(|c| {
                let usage = if c.args.is_empty() {
                    format!("{}{}", self.prefix, c.name)
                } else {
                    format!("{}{} {}", self.prefix, c.name, c.args)
                };
                (usage, c.help)
            })
            .collect();
        rows.push((format!("{}help", self.prefix), "this list"));
        rows.push((format!("{}quit", self.prefix), self.quit_help));
        let width = rows
            .iter()
            .map(|(u, _)| u.chars().count())
            .max()
            .unwrap_or(0);
        let mut s = String::new();
        if self.text.is_some() {
            let _ = writeln!(s, "type a line to send it; commands:");
        } else {
            let _ = writeln!(s, "commands:");
        }
        for (usage, help) in rows {
            let _ = writeln!(s, "  {usage:<width$}  {help}");
        }
        s.pop();
        s
    }
}

impl<C> Default for Commands<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses `on` / `off` (for `gen on|off` and the like).
pub fn on_off(rest: &str) -> Result<bool, String> {
    match rest.to_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        "" => Err("on or off?".into()),
        other => Err(format!("{other:?} is not on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum C {
        Lock,
        Gen(bool),
        Say(String),
    }

    fn table() -> Commands<C> {
        Commands::new()
            .simple("lock", "ask for the critical section", || C::Lock)
            .with("gen", "on|off", "start or stop generating", |r| {
                on_off(r).map(C::Gen)
            })
            .alias(&["generate"])
    }

    #[test]
    fn words_parse_and_mistakes_get_hints() {
        let t = table();
        assert_eq!(t.parse("  LOCK "), Parsed::Run(C::Lock));
        assert_eq!(t.parse(""), Parsed::Empty);
        assert_eq!(t.parse("exit"), Parsed::Quit);
        assert!(
            matches!(t.parse("quit now"), Parsed::Error(e) if e.contains("takes nothing after it"))
        );
        assert_eq!(t.parse("?"), Parsed::Help);
        assert_eq!(t.parse("generate off"), Parsed::Run(C::Gen(false)));
        let Parsed::Error(e) = t.parse("gen") else {
            panic!()
        };
        assert!(
            e.contains("on or off?") && e.contains("usage: gen on|off"),
            "{e}"
        );
        let Parsed::Error(e) = t.parse("lokc") else {
            panic!()
        };
        assert!(
            e.contains("did you mean `lock`?") && e.contains("commands: lock, gen, help, quit"),
            "{e}"
        );
        let Parsed::Error(e) = t.parse(&"x".repeat(500)) else {
            panic!()
        };
        assert!(e.len() < 200, "{e}");
        let Parsed::Error(e) = t.parse("lock now") else {
            panic!()
        };
        assert!(e.contains("takes nothing"), "{e}");
        let help = t.help();
        assert!(
            help.contains("  gen on|off  start or stop generating"),
            "{help}"
        );
        assert!(help.contains("  quit        stop this node"), "{help}");
    }

    #[test]
    fn chat_tables_take_text_and_slash_commands() {
        let t = Commands::chat(|s| Ok(C::Say(s.to_string()))).with(
            "gen",
            "on|off",
            "random words",
            |r| on_off(r).map(C::Gen),
        );
        assert_eq!(
            t.parse("hello there"),
            Parsed::Run(C::Say("hello there".into()))
        );
        assert_eq!(t.parse("/gen on"), Parsed::Run(C::Gen(true)));
        assert_eq!(
            t.parse("//not a command"),
            Parsed::Run(C::Say("/not a command".into()))
        );
        assert_eq!(t.parse("/quit"), Parsed::Quit);
        let Parsed::Error(e) = t.parse("/status") else {
            panic!()
        };
        assert!(e.contains("unknown command") && e.contains("/gen"), "{e}");
        assert!(t.help().starts_with("type a line to send it"));
    }
}
