//! Named texts compiled into the binary (`sluice demo`): never change.
use crate::{Source, SourceError};
use sluice_config::{Loaded, Loader};
use tokio::sync::mpsc;

pub struct Embedded {
    texts: Vec<(&'static str, &'static str)>,
}

impl Embedded {
    pub fn new(texts: Vec<(&'static str, &'static str)>) -> Embedded {
        Embedded { texts }
    }
}

impl Source for Embedded {
    fn watch(&self, _changed: mpsc::Sender<&'static str>) -> Result<(), SourceError> {
        Ok(())
    }

    fn load(&self) -> Result<Loaded, SourceError> {
        let mut l = Loader::new();
        for (name, text) in &self.texts {
            l.add_text((*name).into(), text);
        }
        Ok(l.finish())
    }
}
