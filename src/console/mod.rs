//! The console: `pgdeck` with no command. One app state, changed by three sources (keys, data
//! from background tasks, a clock tick) and drawn by pure view functions. The terminal is
//! restored on exit, on panic (ratatui's hook) and on SIGTERM, SIGINT and SIGHUP.

pub mod activity;
pub mod app;
mod clipboard;
pub mod commands;
pub mod config;
pub mod dialogs;
pub mod diff;
pub mod editor;
mod external;
pub mod form;
pub mod health;
pub mod history;
pub mod keys;
pub mod logs;
pub mod psql;
pub mod requests;
pub mod samples;
pub mod settings;
pub mod source;
mod start;
pub mod theme;
pub mod view;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::signal::unix::{SignalKind, signal};

use self::app::{App, Effect};
use self::source::{KubeSource, LocalSource, Source};
use crate::api::support;
use crate::platform::kube::client;
use crate::platform::local::Local;

/// The platform the console shows.
pub enum Platform {
    Local(Local),
    /// Kubernetes through a kubeconfig context (the current one when `None`).
    Kube {
        context: Option<String>,
    },
}

pub struct Options {
    /// `--theme`: wins over NO_COLOR and the config.
    pub theme: Option<String>,
    pub read_only: bool,
    /// `-n`; `None` with `all_namespaces`, or the config's, or every namespace.
    pub namespace: Option<String>,
    pub all_namespaces: bool,
}

/// Leave the terminal to another program (`E`'s editor, `p`'s psql) and take it back after,
/// whatever became of the program.
fn step_out<T>(
    terminal: &mut ratatui::DefaultTerminal,
    keys: EventStream,
    run: impl FnOnce() -> T,
) -> Result<(T, EventStream), String> {
    // The program owns the terminal meanwhile: stop reading keys, step out. Dropping the stream
    // wakes crossterm's shared poller; a zero-timeout poll takes that wake-up, or the next poll
    // (ratatui asking for the cursor position) would return at once and fail.
    drop(keys);
    let _ = ratatui::crossterm::event::poll(Duration::ZERO);
    ratatui::restore();
    let out = run();
    *terminal = ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    terminal.clear().map_err(|e| e.to_string())?;
    Ok((out, EventStream::new()))
}

/// Open the console until the user quits.
pub fn run(platform: Platform, options: Options) -> Result<(), String> {
    let dir = config::dir();
    let config = config::load(dir.as_deref()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(run_async(platform, options, config, dir))
}

/// The theme to start with, and a warning when it could not be loaded.
fn pick_theme(
    options: &Options,
    config: &config::Config,
    dir: Option<&std::path::Path>,
) -> (theme::Theme, Option<String>) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let name = match (&options.theme, no_color, &config.theme) {
        (Some(t), _, _) => t.clone(),
        (None, true, _) => theme::MONOCHROME.to_string(),
        (None, false, Some(t)) => t.clone(),
        (None, false, None) => theme::DEFAULT.to_string(),
    };
    match theme::load(&name, themes_dir(dir).as_deref()) {
        Ok(t) => (t, None),
        Err(e) => (
            theme::Theme::default_theme(),
            Some(format!("{e}; using the default theme")),
        ),
    }
}

fn themes_dir(config_dir: Option<&std::path::Path>) -> Option<PathBuf> {
    config_dir.map(|d| d.join("themes"))
}

async fn run_async(
    platform: Platform,
    options: Options,
    config: config::Config,
    dir: Option<PathBuf>,
) -> Result<(), String> {
    let (theme, theme_problem) = pick_theme(&options, &config, dir.as_deref());
    let chosen = if options.all_namespaces {
        None
    } else {
        Some(options.namespace.clone().or(config.namespace.clone()))
    };
    let (tx, mut data) = tokio::sync::mpsc::unbounded_channel();
    // The local platform shows every namespace unless told; Kubernetes, as kubectl does, the
    // context's namespace (listing all of them needs rights many users lack).
    let (runs_on, context, namespace, mut source) = match platform {
        Platform::Local(local) => (
            support::Platform::Local,
            format!("local {}", local.home().root().display()),
            chosen.flatten(),
            Source::Local(LocalSource::start(local, tx, config.refresh)),
        ),
        Platform::Kube { context } => {
            let c = client::connect(context.as_deref()).await?;
            let namespace = chosen.map(|n| n.unwrap_or(c.namespace));
            let source = KubeSource::start(c.client, namespace.as_deref(), tx, config.refresh);
            (
                support::Platform::Kube,
                format!("kube {}", c.label),
                namespace,
                Source::Kube(source),
            )
        }
    };
    let mut app = App::new(
        runs_on,
        context,
        namespace,
        options.read_only || config.read_only,
        theme,
        config.refresh,
    );
    if let Some(p) = theme_problem {
        app.warn(p);
    }

    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut term, mut int, mut hup) = (
        signal(SignalKind::terminate()).map_err(|e| e.to_string())?,
        signal(SignalKind::interrupt()).map_err(|e| e.to_string())?,
        signal(SignalKind::hangup()).map_err(|e| e.to_string())?,
    );

    // ratatui's init installs a panic hook that restores the terminal before the message prints.
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let result: Result<(), String> = async {
        loop {
            let size = terminal.size().map_err(|e| e.to_string())?;
            app.page = view::page_rows(&app, size.height);
            terminal
                .draw(|f| view::draw(f, &app))
                .map_err(|e| e.to_string())?;
            let effects = tokio::select! {
                event = keys.next() => match event {
                    Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => app.on_key(k),
                    Some(Ok(_)) => Vec::new(), // resize and others: the next draw reflows
                    Some(Err(e)) => return Err(format!("cannot read the terminal: {e}")),
                    None => return Ok(()),
                },
                Some(d) = data.recv() => app.on_data(d),
                _ = tick.tick() => {
                    app.on_tick(jiff::Timestamp::now());
                    Vec::new()
                }
                _ = term.recv() => return Ok(()),
                _ = int.recv() => return Ok(()),
                _ = hup.recv() => return Ok(()),
            };
            for effect in effects {
                match effect {
                    Effect::Open(key) => source.open(key),
                    Effect::Close => source.close(),
                    Effect::Copy(text) => {
                        if let Err(e) = clipboard::copy(&text) {
                            app.warn(format!("cannot copy: {e}"));
                        }
                    }
                    Effect::Request { key, request } => source.request(key, request),
                    Effect::Activity(target) => source.activity(target),
                    Effect::History(key) => source.history(key),
                    Effect::Settings(target) => source.settings(target),
                    Effect::Logs(target) => source.logs(target),
                    Effect::Signal(signal) => source.signal(signal),
                    Effect::ExternalEdit {
                        key,
                        yaml,
                        resource_version,
                    } => {
                        let edited;
                        (edited, keys) = step_out(&mut terminal, keys, || external::edit(&yaml))?;
                        app.on_external_edit(key, yaml, resource_version, edited);
                    }
                    Effect::Psql {
                        cluster,
                        whose,
                        instance,
                        user,
                    } => match source.psql(&cluster, whose, &instance, &user).await {
                        Err(why) => app.warn(why),
                        Ok(prepared) => {
                            let ran;
                            (ran, keys) = step_out(&mut terminal, keys, || {
                                external::psql(&prepared.session, &instance)
                            })?;
                            // ctrl-c in psql reached the console too: that one was psql's.
                            int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
                            match ran {
                                Ok(done) => app.say(done),
                                Err(why) => app.warn(why),
                            }
                        }
                    },
                    Effect::LoadTheme(name) => {
                        match theme::load(&name, themes_dir(dir.as_deref()).as_deref()) {
                            Ok(t) => app.set_theme(t),
                            Err(e) => app.warn(e.to_string()),
                        }
                    }
                }
            }
            if app.quit {
                return Ok(());
            }
        }
    }
    .await;
    ratatui::restore();
    drop(source);
    result
}
