"""What the caller's export (resources.me) and an admin's export of an account (resources.admin) share."""

from flask import Response

from managers.account_data import AccountExport

EXPORT_DOC = (
    "A zip: account.json (the account, its tokens without secrets, every prediction with its model's name, "
    "version and figures, the account's activity) and photos/, heatmaps/, originals/ (de-identified DICOM files)"
)


def send_export(export: AccountExport) -> Response:
    """The export as a download that no cache keeps."""
    return Response(
        export.data,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "private, no-store",
        },
    )
