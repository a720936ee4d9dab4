// Modal dialogs shared by the pages: a titled modal, and the confirmation asked before a delete.

import { useEffect, useRef, useState } from "preact/hooks";
import { request } from "./api";
import { errorText } from "./format";

/** A modal dialog around `children`, open from its first render; Escape closes it. */
export function Modal(props: { title: string; onClose: () => void; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="modal-title" onClose={props.onClose}>
      <h2 id="modal-title">{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** A modal dialog that asks before deleting `path` (a `kind` named `name`); the server's message is shown
 * if it refuses. The row goes away when the watch delivers the deletion. */
export function ConfirmDelete(props: { kind: string; name: string; path: string; onClose: () => void; children?: preact.ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const { name } = props;

  useEffect(() => {
    ref.current?.showModal();
  }, []);

  const remove = async (): Promise<void> => {
    setBusy(true);
    setError("");
    try {
      await request(props.path, { method: "DELETE" });
      ref.current?.close();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={props.onClose}>
      <h2 id="confirm-title">
        Delete {props.kind} {name}?
      </h2>
      {props.children}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="button" class="secondary" onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
          Delete {name}
        </button>
      </div>
    </dialog>
  );
}
