//! The WebSocket to the signaling server. It carries routing and sealed blobs only.

use std::cell::Cell;
use std::rc::Rc;

use conclave_protocol::signaling::{ClientMessage, ServerMessage};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::window;

pub struct Signaling {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

fn ws_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    format!("{scheme}://{}/ws", location.host().unwrap_or_default())
}

impl Signaling {
    /// Connects to `/ws` on the page's own host. `on_close` gets whether the socket ever
    /// opened.
    pub fn connect(
        mut on_open: impl FnMut() + 'static,
        mut on_message: impl FnMut(ServerMessage) + 'static,
        mut on_close: impl FnMut(bool) + 'static,
    ) -> Result<Self, JsValue> {
        let ws = WebSocket::new(&ws_url())?;
        let opened = Rc::new(Cell::new(false));
        let on_open = {
            let opened = opened.clone();
            Closure::<dyn FnMut()>::new(move || {
                opened.set(true);
                on_open();
            })
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match ServerMessage::from_json(&text) {
                Ok(msg) => on_message(msg),
                Err(_) => web_sys::console::warn_1(&"unreadable message from the server".into()),
            }
        });
        let on_close =
            Closure::<dyn FnMut(CloseEvent)>::new(move |_event: CloseEvent| on_close(opened.get()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    pub fn send(&self, msg: &ClientMessage) {
        if self.ws.ready_state() == WebSocket::OPEN {
            let _ = self.ws.send_with_str(&msg.to_json());
        }
    }

    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
