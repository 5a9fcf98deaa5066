//! OCR for documents without a text layer (scans, pictures) through Amazon Textract's
//! synchronous `DetectDocumentText`, one call per page (it takes one-page documents of up to
//! 10 MB). Off unless `DOCUMENT_OCR=textract`: Textract bills each page (docs/documents.md).

use std::time::Duration;

use aws_sdk_textract::config::http::HttpResponse;
use aws_sdk_textract::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_textract::primitives::Blob;
use aws_sdk_textract::types::{BlockType, Document};

/// One page's call, the SDK's own retries included.
pub(crate) const PAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pages read per document unless `DOCUMENT_OCR_MAX_PAGES` says otherwise: a document's first
/// pages say what it is.
const DEFAULT_MAX_PAGES: usize = 3;

/// Reads text off page images.
#[derive(Clone, Debug)]
pub struct Ocr {
    client: aws_sdk_textract::Client,
    /// Pages read per document; the rest are left unread (and the evidence says so).
    pub max_pages: usize,
}

/// Why OCR gave no text.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum OcrError {
    /// Textract is busy or unreachable: the event is tried again later.
    #[error("{0}")]
    Later(String),
    /// Textract will not read this file (or may not be asked): a person looks instead.
    #[error("{0}")]
    Refused(String),
}

/// `DOCUMENT_OCR` names no OCR switchyard has.
#[derive(Debug, thiserror::Error)]
#[error("DOCUMENT_OCR is {0:?}: it takes \"textract\" or \"off\"")]
pub struct UnknownOcr(pub String);

impl Ocr {
    /// `DOCUMENT_OCR`: `textract` turns OCR on; unset, empty or `off` leaves it off.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Option<Self>, UnknownOcr> {
        match s.optional("DOCUMENT_OCR").unwrap_or("off") {
            "off" | "" => Ok(None),
            "textract" => Ok(Some(Ocr {
                client: aws.textract(),
                max_pages: s.positive("DOCUMENT_OCR_MAX_PAGES", DEFAULT_MAX_PAGES),
            })),
            other => Err(UnknownOcr(other.to_owned())),
        }
    }

    /// The text on `pages` (each a one-page document), line by line, page after page.
    pub async fn read(&self, pages: Vec<Vec<u8>>) -> Result<String, OcrError> {
        let mut text = String::new();
        for page in pages {
            let call = self
                .client
                .detect_document_text()
                .document(Document::builder().bytes(Blob::new(page)).build())
                .send();
            let out = tokio::time::timeout(PAGE_TIMEOUT, call)
                .await
                .map_err(|_| {
                    OcrError::Later(format!(
                        "Textract took longer than {} s",
                        PAGE_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(failed)?;
            for line in out
                .blocks()
                .iter()
                .filter(|b| b.block_type() == Some(&BlockType::Line))
            {
                text.push_str(line.text().unwrap_or_default());
                text.push('\n');
            }
            text.push('\n');
        }
        Ok(text)
    }
}

/// Which of Textract's answers are worth waiting out, and which say this file will not do.
/// Messages are Textract's own and name no content.
fn failed<E: ProvideErrorMetadata>(e: SdkError<E, HttpResponse>) -> OcrError {
    let code = e.code().unwrap_or_default().to_owned();
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    match &e {
        SdkError::ServiceError(_) => match code.as_str() {
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "InternalServerError" => OcrError::Later(format!("Textract answered {code}")),
            "AccessDeniedException" | "UnrecognizedClientException" => OcrError::Refused(format!(
                "Textract refused the call ({code}): the function may not use \
                 textract:DetectDocumentText"
            )),
            // An answer without Textract's error shape: its status says which side failed.
            "" if status >= 500 || status == 429 => {
                OcrError::Later(format!("Textract answered HTTP {status}"))
            }
            "" => OcrError::Refused(format!(
                "Textract refused the call (HTTP {status}): the function may not use \
                 textract:DetectDocumentText"
            )),
            _ => OcrError::Refused(format!(
                "Textract answered {code}: {}",
                e.message().unwrap_or("no message")
            )),
        },
        // Not sent, timed out or an unreadable answer: nothing was said about the file.
        _ => OcrError::Later(format!("Textract could not be reached: {e}")),
    }
}
