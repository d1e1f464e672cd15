//! `dsys chat server` and `dsys chat client`.
//!
//! The client has one executor (commands in, lines out) and two faces: the
//! terminal chat UI shared with `dsys multicast` (`ui::chat`), and `--plain`
//! for scripts: commands on stdin, one result per line on stdout (`ok: ...`,
//! `error: ...`, `<- SENDER ...` for a message). A lost connection is
//! retried with backoff; once back, the client logs in again by itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::client::{Conn, Lost, Protocol, Pushed};
use super::service::{ChatService, Message};
use super::store::{Store, Sync};
use super::wire::{Request, Response};
use crate::cli::{CliError, Outcome, block_on};
use crate::ui::chat::{Entry, Key, Terminal, View};
use crate::ui::commands::{Commands, Parsed};
use crate::ui::input::{Input, Stdin};

#[derive(Args, Debug)]
#[command(
    after_help = "Serves the wire protocol (docs/chat-wire-protocol.md) and gRPC\n\
(proto/chat.proto) at once, over the same accounts and queues. Ctrl-C or\n\
SIGTERM stops it; what was acknowledged is in the database."
)]
pub struct ServerArgs {
    /// Address for the wire protocol
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address for gRPC
    #[arg(long, default_value = "127.0.0.1:7071", value_name = "ADDR")]
    pub grpc_listen: SocketAddr,
    /// The SQLite database (created if missing)
    #[arg(long, default_value = "chat.db", value_name = "FILE")]
    pub db: PathBuf,
    /// normal: a commit survives kill -9 of the server; full: also a power loss (slower)
    #[arg(long, value_enum, default_value = "normal")]
    pub sync: Sync,
    /// Both protocols over TLS only, with DIR/NAME.pem and DIR/NAME.key
    /// (NAME from --tls-name); clients then need --tls-ca DIR/ca.pem
    #[arg(long, value_name = "DIR")]
    pub tls: Option<PathBuf>,
    /// Which certificate in the --tls DIR is this server's
    #[arg(long, default_value = "server", value_name = "NAME", requires = "tls")]
    pub tls_name: String,
}

impl crate::tool::Run for ServerArgs {
    fn run(self) -> Outcome {
        crate::cli::block_on_threads(server(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, CliError> {
    crate::cli::listen(
        addr,
        &format!(" for {what}"),
        "is another server running? --listen/--grpc-listen pick other ports",
    )
    .await
}

/// Raises this process's open-files limit to what it may (the hard
/// limit): two ports of `MAX_CONNECTIONS` each need that many
/// descriptors. Says so if the limit stays below what they need.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = 2 * super::wire_server::MAX_CONNECTIONS as u64 + 64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let want = hard.min(need.max(soft));
    if want > soft {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
    }
    if want < need {
        eprintln!(
            "note: at most {want} open files (ulimit -n); {need} would let both ports take {} connections",
            super::wire_server::MAX_CONNECTIONS
        );
    }
}

async fn server(a: ServerArgs) -> Result<(), CliError> {
    raise_open_files();
    let tls = crate::net::tls::Tls::from_flag(a.tls.as_deref(), &a.tls_name)?;
    let wire_tls = tls
        .as_ref()
        .map(|t| t.rustls_server())
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    for addr in [a.listen, a.grpc_listen] {
        if tls.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "warning: listening on {addr} without --tls: passwords and messages cross that network in clear"
            );
        }
    }
    let (store, loaded) = Store::open(&a.db, a.sync).map_err(CliError::Usage)?;
    let accounts = loaded.accounts.len();
    let service = ChatService::new(store, loaded.accounts, loaded.max_id);
    let wire = bind(a.listen, "the wire protocol").await?;
    let grpc = bind(a.grpc_listen, "gRPC").await?;
    let (stop_tx, stop) = watch::channel(false);
    let w = tokio::spawn(super::wire_server::serve(
        wire,
        service.clone(),
        wire_tls,
        stop.clone(),
    ));
    let over = tls.as_ref().map_or(String::new(), |t| {
        format!(", both over TLS ({})", t.dir.display())
    });
    let g = tokio::spawn(super::grpc_server::serve(grpc, service, tls, stop));
    println!(
        "chat server: wire protocol on {}, gRPC on {}{over}, database {} ({accounts} accounts). Ctrl-C stops it.",
        a.listen,
        a.grpc_listen,
        a.db.display()
    );
    let mut term = crate::ui::shell::Term::new();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = w.await;
        let _ = g.await;
    })
    .await;
    eprintln!("chat server stopped");
    Ok(())
}

#[derive(Args, Debug)]
#[command(
    after_help = "Commands: /create NAME, /login NAME, /logout, /list [PATTERN],\n\
/msg NAME TEXT (or @NAME TEXT), /deliver [N], /delete, /help, /quit.\n\
Passwords are asked for and not shown. In --plain mode a command may carry\n\
its password (/login NAME PASSWORD), or the next line is the password."
)]
pub struct ClientArgs {
    /// The server's address (default 127.0.0.1:7070 for wire, :7071 for grpc)
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    /// Which of the server's protocols to speak
    #[arg(long, value_enum, default_value = "wire")]
    pub protocol: Protocol,
    /// Lines instead of the terminal UI: commands on stdin, a result per line on stdout
    #[arg(long)]
    pub plain: bool,
    /// Connect over TLS, trusting the server's certificate if this CA
    /// (ca.pem from `dsys certs init`) signed it
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry [default: the host of --server]
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_name: Option<String>,
}

impl crate::tool::Run for ClientArgs {
    fn run(self) -> Outcome {
        block_on(client(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

/// Accounts per page of `/list`.
const LIST_PAGE: u16 = 20;

/// A command typed at the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Create(String, Option<String>),
    Login(String, Option<String>),
    Logout,
    /// A pattern and a page (from 1).
    List(String, u32),
    Msg(String, String),
    Deliver(u16),
    Delete(Option<String>),
}

fn name_and_password(rest: &str) -> Result<(String, Option<String>), String> {
    let mut it = rest.splitn(2, ' ');
    let name = it.next().unwrap_or("").trim();
    if name.is_empty() {
        return Err("give the account's NAME".into());
    }
    let pw = it.next().map(str::trim).filter(|p| !p.is_empty());
    Ok((name.to_string(), pw.map(str::to_string)))
}

fn to_and_text(rest: &str) -> Result<Cmd, String> {
    match rest.split_once(' ') {
        Some((to, text)) if !to.is_empty() && !text.trim().is_empty() => {
            Ok(Cmd::Msg(to.to_string(), text.to_string()))
        }
        _ => Err("write /msg NAME TEXT (or @NAME TEXT)".into()),
    }
}

pub fn commands() -> Commands<Cmd> {
    Commands::chat(|line| match line.strip_prefix('@') {
        Some(rest) => to_and_text(rest),
        None => Err(format!(
            "{line:?} is not a command: to send it, write @NAME {line} (or /msg NAME TEXT); /help lists the commands"
        )),
    })
    .quit_help("leave (Ctrl-D on an empty line, Ctrl-C)")
    .with("create", "NAME", "create an account (asks for its password)", |r| {
        name_and_password(r).map(|(n, p)| Cmd::Create(n, p))
    })
    .with("login", "NAME", "log in (asks for the password)", |r| {
        name_and_password(r).map(|(n, p)| Cmd::Login(n, p))
    })
    .simple("logout", "log out (this connection)", || Cmd::Logout)
    .with(
        "list",
        "[PATTERN] [PAGE]",
        "list accounts, all or matching (* and ?, e.g. al*), 20 a page",
        |r| {
            let words: Vec<&str> = r.split_whitespace().collect();
            let page = |w: &str| {
                w.parse::<u32>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`/list {r}`: PAGE is a number from 1"))
            };
            match words[..] {
                [] => Ok(Cmd::List(String::new(), 1)),
                [w] if w.bytes().all(|b| b.is_ascii_digit()) => Ok(Cmd::List(String::new(), page(w)?)),
                [p] => Ok(Cmd::List(p.to_string(), 1)),
                [p, w] => Ok(Cmd::List(p.to_string(), page(w)?)),
                _ => Err("write /list [PATTERN] [PAGE]".into()),
            }
        },
    )
    .with("msg", "NAME TEXT", "send TEXT to NAME (@NAME TEXT works too)", to_and_text)
    .with("deliver", "[N]", "fetch up to N queued messages (default 10), oldest first", |r| {
        if r.is_empty() {
            return Ok(Cmd::Deliver(10));
        }
        r.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .map(Cmd::Deliver)
            .ok_or_else(|| format!("`/deliver {r}`: N is a count from 1 to 1000"))
    })
    .with("delete", "", "delete your account (asks for the password)", |r| {
        Ok(Cmd::Delete((!r.is_empty()).then(|| r.to_string())))
    })
}

/// What the client shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Ok(String),
    Error(String),
    Message(Message),
    /// About the connection (lost, back).
    Note(String),
}

fn time_of(ms: u64) -> String {
    crate::ui::chat::time_of_day(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

fn sender(m: &Message) -> String {
    if m.from_deleted {
        format!("{} (deleted account)", m.from)
    } else {
        m.from.clone()
    }
}

/// The connection and what the client remembers to restore it.
struct Client {
    protocol: Protocol,
    /// How to check the server, when it speaks TLS.
    tls: Option<super::client::ClientTls>,
    addr: String,
    conn: Option<Conn>,
    me: Arc<Mutex<String>>,
    /// Logged in as (name, password): logged in again after a reconnect.
    creds: Option<(String, String)>,
}

impl Client {
    fn set_me(&self, name: &str) {
        if let Ok(mut m) = self.me.lock() {
            *m = name.to_string();
        }
    }

    async fn call(&mut self, req: Request) -> Result<Response, Lost> {
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| Lost("not connected (reconnecting)".into()))?;
        let r = conn.call(req).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// Carries out `cmd` (its password, if it needs one, given).
    async fn run(&mut self, cmd: Cmd, password: Option<String>) -> Vec<Shown> {
        let pw = password.unwrap_or_default();
        let err = |r: Response| match r {
            Response::Error { message, .. } => Shown::Error(message),
            other => Shown::Error(format!("unexpected answer {other:?}")),
        };
        let lost = |l: Lost| vec![Shown::Error(format!("{l}; not done"))];
        match cmd {
            Cmd::Create(name, _) => match self
                .call(Request::Create {
                    name: name.clone(),
                    password: pw,
                })
                .await
            {
                Ok(Response::Ok) => vec![Shown::Ok(format!(
                    "created account {name}; /login {name} to use it"
                ))],
                Ok(r) => vec![err(r)],
                Err(l) => lost(l),
            },
            Cmd::Login(name, _) => {
                self.set_me(&name);
                match self
                    .call(Request::Login {
                        name: name.clone(),
                        password: pw.clone(),
                    })
                    .await
                {
                    Ok(Response::LoggedIn { queued }) => {
                        self.creds = Some((name.clone(), pw));
                        let tail = if queued > 0 {
                            format!("; {queued} queued message(s): /deliver reads them")
                        } else {
                            "; no queued messages".into()
                        };
                        vec![Shown::Ok(format!("logged in as {name}{tail}"))]
                    }
                    Ok(r) => vec![err(r)],
                    Err(l) => lost(l),
                }
            }
            Cmd::Logout => match self.call(Request::Logout).await {
                Ok(Response::Ok) => {
                    self.creds = None;
                    vec![Shown::Ok("logged out".into())]
                }
                Ok(r) => vec![err(r)],
                Err(l) => lost(l),
            },
            Cmd::List(pattern, page) => {
                let req = Request::List {
                    pattern: pattern.clone(),
                    offset: (page - 1).saturating_mul(LIST_PAGE as u32),
                    limit: LIST_PAGE,
                };
                match self.call(req).await {
                    Ok(Response::Accounts { total, accounts }) => {
                        let shown: Vec<String> = accounts
                            .iter()
                            .map(|(n, on)| {
                                if *on {
                                    format!("{n} (online)")
                                } else {
                                    n.clone()
                                }
                            })
                            .collect();
                        let what = if pattern.is_empty() {
                            "accounts".to_string()
                        } else {
                            format!("accounts matching {pattern}")
                        };
                        let list = if shown.is_empty() {
                            "none".to_string()
                        } else {
                            shown.join(", ")
                        };
                        let pages = total.div_ceil(LIST_PAGE as u32).max(1);
                        let more = if pages > 1 {
                            let next = if page < pages {
                                format!("; /list {pattern} {} for more", page + 1)
                                    .replace("  ", " ")
                            } else {
                                String::new()
                            };
                            format!(" (page {page} of {pages}{next})")
                        } else {
                            String::new()
                        };
                        vec![Shown::Ok(format!("{what}: {total}{more}: {list}"))]
                    }
                    Ok(r) => vec![err(r)],
                    Err(l) => lost(l),
                }
            }
            Cmd::Msg(to, text) => match self
                .call(Request::Send {
                    to: to.clone(),
                    text,
                })
                .await
            {
                Ok(Response::Sent {
                    id,
                    delivered: true,
                }) => vec![Shown::Ok(format!("sent to {to} (delivered, id {id})"))],
                Ok(Response::Sent {
                    id,
                    delivered: false,
                }) => vec![Shown::Ok(format!(
                    "sent to {to} (queued until {to} asks for it, id {id})"
                ))],
                Ok(r) => vec![err(r)],
                Err(l) => lost(l),
            },
            Cmd::Deliver(n) => match self.call(Request::Deliver { max: n }).await {
                Ok(Response::Messages { queued, messages }) => {
                    let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
                    let got = messages.len();
                    let mut out: Vec<Shown> = messages.into_iter().map(Shown::Message).collect();
                    // Shown: now the client has them, and they leave the queue.
                    if !ids.is_empty() {
                        match self.call(Request::Ack { ids }).await {
                            Ok(Response::Acked { .. }) => {}
                            Ok(r) => out.push(err(r)),
                            Err(l) => out.push(Shown::Error(format!("{l}; these stay queued"))),
                        }
                    }
                    let left = (queued as usize).saturating_sub(got);
                    out.push(Shown::Ok(format!("delivered {got}; {left} still queued")));
                    out
                }
                Ok(r) => vec![err(r)],
                Err(l) => lost(l),
            },
            Cmd::Delete(_) => match self.call(Request::Delete { password: pw }).await {
                Ok(Response::Deleted { dropped }) => {
                    let name = self.creds.take().map(|c| c.0).unwrap_or_default();
                    vec![Shown::Ok(format!(
                        "account {name} deleted; {dropped} undelivered message(s) dropped"
                    ))]
                }
                Ok(r) => vec![err(r)],
                Err(l) => lost(l),
            },
        }
    }

    /// Connects (again); logs in again if it was logged in.
    async fn reconnect(
        &mut self,
        pushes: &mut Option<mpsc::Receiver<Pushed>>,
    ) -> Result<Vec<Shown>, Lost> {
        let (conn, rx) = Conn::connect(
            self.protocol,
            &self.addr,
            self.me.clone(),
            self.tls.as_ref(),
        )
        .await?;
        self.conn = Some(conn);
        *pushes = Some(rx);
        let mut out = vec![Shown::Note(
            format!("connected to {} ({:?} protocol)", self.addr, self.protocol).to_lowercase(),
        )];
        if let Some((name, pw)) = self.creds.clone() {
            match self
                .call(Request::Login {
                    name: name.clone(),
                    password: pw,
                })
                .await?
            {
                Response::LoggedIn { queued } => out.push(Shown::Note(format!(
                    "logged in again as {name} ({queued} queued)"
                ))),
                Response::Error { message, .. } => {
                    self.creds = None;
                    out.push(Shown::Error(format!(
                        "could not log in again as {name}: {message}"
                    )));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// What a client face does: read the next line, show results, ask for a
/// password.
trait Face {
    /// The next input line; `None` when the user leaves.
    async fn line(&mut self) -> Option<String>;
    async fn secret(&mut self, prompt: &str) -> Option<String>;
    fn show(&mut self, s: &Shown);
    fn help(&mut self, text: &str);
    fn status(&mut self, _connected: bool, _me: Option<&str>) {}
}

struct Plain {
    input: Stdin,
}

impl Face for Plain {
    async fn line(&mut self) -> Option<String> {
        loop {
            match self.input.next().await {
                Input::Line(l) => return Some(l),
                Input::End => return None,
                Input::NotUtf8 => println!("error: that line is not valid UTF-8 text: ignored"),
                Input::TooLong(n) => println!("error: that line is {n} bytes: ignored"),
            }
        }
    }

    async fn secret(&mut self, _prompt: &str) -> Option<String> {
        // Scripts give the password on the next line.
        self.line()
            .await
            .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
    }

    fn show(&mut self, s: &Shown) {
        match s {
            Shown::Ok(t) => println!("ok: {t}"),
            Shown::Error(t) => println!("error: {t}"),
            Shown::Note(t) => println!("note: {t}"),
            Shown::Message(m) => println!(
                "<- {} [{}] (id {}): {}",
                sender(m),
                time_of(m.sent_ms),
                m.id,
                m.text
            ),
        }
    }

    fn help(&mut self, text: &str) {
        for l in text.lines() {
            println!("help: {l}");
        }
    }
}

struct Tui {
    term: Terminal,
    view: View,
    sigterm: crate::ui::shell::Term,
}

impl Tui {
    async fn key(&mut self) -> Option<String> {
        loop {
            if self.term.draw(&mut self.view).is_err() {
                return None;
            }
            tokio::select! {
                _ = self.sigterm.recv() => return None,
                ev = self.term.events.recv() => match ev {
                    None => return None,
                    Some(ev) => match Terminal::handle(&mut self.view, ev) {
                        Key::Quit => return None,
                        Key::Submit(l) => return Some(l),
                        Key::None => {}
                    },
                },
            }
        }
    }
}

impl Face for Tui {
    async fn line(&mut self) -> Option<String> {
        self.key().await
    }

    async fn secret(&mut self, prompt: &str) -> Option<String> {
        self.view.set_secret(Some(prompt));
        let r = self.key().await;
        self.view.set_secret(None);
        r
    }

    fn show(&mut self, s: &Shown) {
        match s {
            Shown::Ok(t) => self.view.system(t.clone()),
            Shown::Error(t) => self.view.system(format!("error: {t}")),
            Shown::Note(t) => self.view.system(t.clone()),
            Shown::Message(m) => {
                let color = m
                    .from
                    .bytes()
                    .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
                self.view.push(Entry::Message {
                    time: time_of(m.sent_ms),
                    label: format!("#{}", m.id % 100_000),
                    sender: sender(m),
                    color,
                    text: m.text.clone(),
                });
            }
        }
        let _ = self.term.draw(&mut self.view);
    }

    fn help(&mut self, text: &str) {
        self.view.system(text.to_string());
    }

    fn status(&mut self, connected: bool, me: Option<&str>) {
        let conn = if connected {
            Span::styled(" connected ", Style::default().fg(Color::Green))
        } else {
            Span::styled(" RECONNECTING ", Style::default().fg(Color::Red))
        };
        let who = match me {
            Some(n) => format!(" logged in as {n} "),
            None => " not logged in (/create NAME, /login NAME) ".to_string(),
        };
        self.view
            .set_status(Line::from(vec![conn, Span::raw(who), Span::raw(" /help ")]));
    }
}

async fn client(a: ClientArgs) -> Result<(), CliError> {
    let addr = a
        .server
        .clone()
        .unwrap_or_else(|| a.protocol.default_addr().to_string());
    let tls = a
        .tls_ca
        .as_ref()
        .map(|f| crate::net::tls::TrustCa::load(f))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .map(|ca| super::client::ClientTls::new(ca, &addr, a.tls_name.clone()));
    let mut c = Client {
        protocol: a.protocol,
        tls,
        addr: addr.clone(),
        conn: None,
        me: Arc::new(Mutex::new(String::new())),
        creds: None,
    };
    let mut pushes = None;
    let first = c.reconnect(&mut pushes).await;
    let tui = crate::ui::chat::use_tui(a.plain);
    if tui {
        let log = std::env::temp_dir().join("dsys-chat-client.log");
        let _ = crate::cli::log_to_file(&log);
        let term = Terminal::start()
            .map_err(|e| CliError::Failed(format!("cannot start the terminal UI: {e}")))?;
        let mut view = View::new("type /help, /create NAME or /login NAME; @NAME TEXT sends");
        view.set_title(&format!("chat on {addr}"));
        let mut face = Tui {
            term,
            view,
            sigterm: crate::ui::shell::Term::new(),
        };
        run_client(&mut c, &mut pushes, first, &mut face).await;
    } else {
        let mut face = Plain {
            input: Stdin::start(),
        };
        run_client(&mut c, &mut pushes, first, &mut face).await;
    }
    Ok(())
}

async fn run_client<F: Face>(
    c: &mut Client,
    pushes: &mut Option<mpsc::Receiver<Pushed>>,
    first: Result<Vec<Shown>, Lost>,
    face: &mut F,
) {
    match first {
        Ok(shown) => shown.iter().for_each(|s| face.show(s)),
        Err(l) => face.show(&Shown::Error(format!("{l}; retrying in the background"))),
    }
    let table = commands();
    let mut backoff = Duration::from_millis(100);
    let mut retry_at = tokio::time::Instant::now() + backoff;
    loop {
        let me = c.creds.as_ref().map(|x| x.0.clone());
        face.status(c.conn.is_some(), me.as_deref());
        let connected = c.conn.is_some();
        tokio::select! {
            line = face.line() => {
                let Some(line) = line else { break };
                match table.parse(&line) {
                    Parsed::Empty => {}
                    Parsed::Quit => break,
                    Parsed::Help => face.help(&table.help()),
                    Parsed::Error(e) => face.show(&Shown::Error(e)),
                    Parsed::Run(cmd) => {
                        let needs = match &cmd {
                            Cmd::Create(n, None) => Some(format!("password for the new account {n}")),
                            Cmd::Login(n, None) => Some(format!("password for {n}")),
                            Cmd::Delete(None) => Some("your password, to confirm deleting the account".to_string()),
                            _ => None,
                        };
                        let pw = match (needs, &cmd) {
                            (Some(p), _) => match face.secret(&p).await {
                                Some(pw) => Some(pw),
                                None => break,
                            },
                            (None, Cmd::Create(_, p) | Cmd::Login(_, p) | Cmd::Delete(p)) => p.clone(),
                            _ => None,
                        };
                        let shown = c.run(cmd, pw).await;
                        shown.iter().for_each(|s| face.show(s));
                        if c.conn.is_none() && connected {
                            face.show(&Shown::Note(format!("connection to {} lost; reconnecting", c.addr)));
                            *pushes = None;
                            backoff = Duration::from_millis(100);
                            retry_at = tokio::time::Instant::now() + backoff;
                        }
                    }
                }
            }
            m = async { pushes.as_mut().expect("checked").recv().await }, if pushes.is_some() => match m {
                Some(Pushed::Message(m)) => face.show(&Shown::Message(m)),
                Some(Pushed::LoggedOut(why)) => {
                    // Not logged in again after a reconnect either.
                    c.creds = None;
                    c.set_me("");
                    face.show(&Shown::Note(format!("logged out by the server: {why}")));
                }
                None => {
                    *pushes = None;
                    c.conn = None;
                    face.show(&Shown::Note(format!("connection to {} lost; reconnecting", c.addr)));
                    backoff = Duration::from_millis(100);
                    retry_at = tokio::time::Instant::now() + backoff;
                }
            },
            _ = tokio::time::sleep_until(retry_at), if c.conn.is_none() => {
                match c.reconnect(pushes).await {
                    Ok(shown) => shown.iter().for_each(|s| face.show(s)),
                    Err(_) => {
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        retry_at = tokio::time::Instant::now() + backoff;
                    }
                }
            }
        }
    }
}
