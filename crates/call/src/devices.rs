//! Cameras, microphones and speakers: which one to use, given what the person chose in this
//! browser before and what is plugged in now.

/// What a device is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    Camera,
    Microphone,
    Speaker,
}

impl DeviceKind {
    /// As a person says it: "camera", "microphone", "speaker".
    pub fn word(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Microphone => "microphone",
            Self::Speaker => "speaker",
        }
    }
}

/// One device as the browser lists it (`enumerateDevices`), the browser's default first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub kind: DeviceKind,
    /// The browser's id for it on this site; only meaningful to this browser. Empty for a
    /// device of a kind the person has not allowed yet (Firefox lists such a camera, plugged
    /// in during a call that began without one, with no id): it can only be asked for as the
    /// default of its kind.
    pub id: String,
    /// Its name ("Built-in microphone"), empty before the person allowed the device.
    pub label: String,
}

impl Device {
    /// Its name, or a stand-in where the browser gives none.
    pub fn name(&self) -> String {
        if self.label.trim().is_empty() {
            format!("Unnamed {}", self.kind.word())
        } else {
            self.label.clone()
        }
    }
}

/// The device of `kind` to use: `wanted` while it is plugged in, otherwise the first listed
/// (the browser's default). After a device stops (unplugged), the same rule gives the next one:
/// the browser's "default" entry stays listed and now means another device.
pub fn pick<'a>(
    devices: &'a [Device],
    kind: DeviceKind,
    wanted: Option<&str>,
) -> Option<&'a Device> {
    let mut of_kind = of_kind(devices, kind);
    let first = of_kind.clone().next();
    wanted.and_then(|id| of_kind.find(|d| d.id == id)).or(first)
}

/// The devices of `kind` that can be asked for by id, in the browser's order.
pub fn of_kind(devices: &[Device], kind: DeviceKind) -> impl Iterator<Item = &Device> + Clone {
    devices
        .iter()
        .filter(move |d| d.kind == kind && !d.id.is_empty())
}

/// Whether a device of `kind` is plugged in, whether or not the browser names it yet.
pub fn plugged_in(devices: &[Device], kind: DeviceKind) -> bool {
    devices.iter().any(|d| d.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(kind: DeviceKind, id: &str) -> Device {
        Device {
            kind,
            id: id.to_owned(),
            label: format!("{id} label"),
        }
    }

    #[test]
    fn the_chosen_device_while_it_is_there_then_the_default() {
        let list = vec![
            dev(DeviceKind::Microphone, "default"),
            dev(DeviceKind::Microphone, "headset"),
            dev(DeviceKind::Camera, "front"),
            dev(DeviceKind::Camera, "usb"),
        ];
        let id = |d: Option<&Device>| d.map(|d| d.id.clone());
        assert_eq!(
            id(pick(&list, DeviceKind::Camera, Some("usb"))),
            Some("usb".into())
        );
        assert_eq!(
            id(pick(&list, DeviceKind::Camera, None)),
            Some("front".into())
        );
        // Unplugged: the next one.
        assert_eq!(
            id(pick(&list, DeviceKind::Camera, Some("gone"))),
            Some("front".into())
        );
        assert_eq!(
            id(pick(&list, DeviceKind::Microphone, Some("headset"))),
            Some("headset".into())
        );
        // Never a device of another kind, even with that id.
        assert_eq!(
            id(pick(&list, DeviceKind::Microphone, Some("usb"))),
            Some("default".into())
        );
        assert_eq!(pick(&list, DeviceKind::Speaker, None), None);
    }

    #[test]
    fn a_device_without_a_label_still_has_a_name() {
        let d = Device {
            kind: DeviceKind::Camera,
            id: "x".into(),
            label: " ".into(),
        };
        assert_eq!(d.name(), "Unnamed camera");
    }

    #[test]
    fn a_device_without_an_id_is_plugged_in_but_never_picked_by_id() {
        let list = vec![
            dev(DeviceKind::Microphone, "mic"),
            dev(DeviceKind::Camera, ""),
        ];
        assert!(plugged_in(&list, DeviceKind::Camera));
        assert!(!plugged_in(&list, DeviceKind::Speaker));
        assert_eq!(of_kind(&list, DeviceKind::Camera).count(), 0);
        assert_eq!(pick(&list, DeviceKind::Camera, None), None);
        assert_eq!(pick(&list, DeviceKind::Camera, Some("")), None);
    }
}
