"""A prediction in the forms a hospital's systems read: a DICOM Structured Report, images and a FHIR R4 Bundle.

Each form is built by one function from one FindingReport (services.interop.report), which the
caller fills from the prediction and its modality's spec: dicom_sr.structured_report and
dicom_sr.secondary_capture / dicom_sr.parametric_map (highdicom), fhir.bundle (fhir.resources).
They read nothing else, so the SR and the Bundle of one prediction say the same thing.
"""
