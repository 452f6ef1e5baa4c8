//! A real browser for the operator console's tests: Debian's headless
//! `chromium`, driven over WebDriver by `fantoccini` through a
//! `chromedriver` this harness starts on a free port and kills when the
//! browser is dropped. `scripts/ensure-browser.sh` installs both.
//!
//! `CONTRAIL_CHROMEDRIVER` and `CONTRAIL_CHROMIUM` name other binaries;
//! `CONTRAIL_CONSOLE_SCREENSHOTS` names a directory (relative to the
//! workspace root) where [`Browser::screenshot`] saves PNGs, so the pictures
//! in docs/images can be taken again with `CONTRAIL_CONSOLE_SCREENSHOTS=docs/images`.

use std::path::PathBuf;
use std::process::Stdio;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use test_support::{eventually, poll_until};
use tokio::process::{Child, Command};

use crate::helpers::PATIENCE;

/// A headless chromium session and the chromedriver serving it.
pub struct Browser {
    client: Client,
    /// Killed on drop (`kill_on_drop`), so no driver outlives a failed test.
    driver: Child,
}

impl Browser {
    pub async fn open() -> Self {
        let port = test_support::ports::free_port()
            .unwrap_or_else(|error| panic!("find a free port for chromedriver: {error:#}"));
        let driver_binary =
            std::env::var("CONTRAIL_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let driver = Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("start {driver_binary} (scripts/ensure-browser.sh installs it): {error}")
            });
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(PATIENCE, "chromedriver answers", || async {
            http.get(format!("{webdriver}/status"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;

        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1200,900",
            ]
        });
        if let Ok(chromium) = std::env::var("CONTRAIL_CHROMIUM") {
            options["binary"] = json!(chromium);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("open a chromium session");
        Self { client, driver }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// The element `css` selects, once it is there.
    pub async fn find(&self, css: &str) -> Element {
        let what = format!("the page shows {css}");
        poll_until(
            PATIENCE,
            &what,
            || async { self.client.find(Locator::Css(css)).await.ok() },
            Option::is_some,
        )
        .await
        .expect("polled until found")
    }

    /// Clicks what `css` selects. The page re-renders as answers arrive, so
    /// an element found a moment ago may be gone (a stale reference): find
    /// it again and click again until a click lands.
    pub async fn click(&self, css: &str) {
        let what = format!("a click on {css} lands");
        poll_until(
            PATIENCE,
            &what,
            || async {
                match self.client.find(Locator::Css(css)).await {
                    Ok(element) => element.click().await.map_err(|error| error.to_string()),
                    Err(error) => Err(error.to_string()),
                }
            },
            Result::is_ok,
        )
        .await
        .expect("polled until clicked");
    }

    /// Replaces the text of the field `css` selects, finding it again if a
    /// re-render made it stale (as [`click`](Self::click) does).
    pub async fn type_into(&self, css: &str, text: &str) {
        let what = format!("{css} takes the text");
        poll_until(
            PATIENCE,
            &what,
            || async {
                let field = self
                    .client
                    .find(Locator::Css(css))
                    .await
                    .map_err(|error| error.to_string())?;
                field.clear().await.map_err(|error| error.to_string())?;
                field
                    .send_keys(text)
                    .await
                    .map_err(|error| error.to_string())
            },
            Result::is_ok,
        )
        .await
        .expect("polled until typed");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("select an option");
    }

    /// An attribute of the element `css` selects, if both are there.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.attr(name).await.ok().flatten()
    }

    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits until the element `css` selects has `name` = `value`.
    pub async fn wait_for_attribute(&self, css: &str, name: &str, value: &str) {
        let what = format!("{css} has {name}={value}");
        poll_until(
            PATIENCE,
            &what,
            || self.attribute(css, name),
            |seen| seen.as_deref() == Some(value),
        )
        .await;
    }

    /// Waits until the element `css` selects shows a text containing `part`.
    pub async fn wait_for_text(&self, css: &str, part: &str) -> String {
        let what = format!("{css} says {part:?}");
        poll_until(
            PATIENCE,
            &what,
            || self.text(css),
            |seen| seen.as_deref().is_some_and(|text| text.contains(part)),
        )
        .await
        .unwrap_or_default()
    }

    /// Saves the page as `name`.png when `CONTRAIL_CONSOLE_SCREENSHOTS` names a directory.
    pub async fn screenshot(&self, name: &str) {
        let Ok(directory) = std::env::var("CONTRAIL_CONSOLE_SCREENSHOTS") else {
            return;
        };
        let mut path = PathBuf::from(directory);
        if path.is_relative() {
            // Tests run in tests/system; the directory is named from the workspace root.
            path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(path);
        }
        std::fs::create_dir_all(&path).expect("create the screenshot directory");
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::write(path.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        self.client.close().await.expect("end the browser session");
        self.driver.kill().await.expect("stop chromedriver");
    }
}
