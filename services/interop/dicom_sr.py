"""A prediction as DICOM: a Comprehensive 3D SR (TID 1500, one TID 1501 image-level group), the photo as a
Secondary Capture image, and the model's activation map as a Parametric Map; built with highdicom.

The SR goes into the study of the image it is about: the de-identified DICOM upload (its study, its
series and instance referenced), or, for a photo, a Secondary Capture made from it (secondary_capture),
whose study and UIDs come from the prediction's id. Nothing about the person travels: patient name,
id, birth date and sex are empty, as in the de-identified upload.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from services.interop.report import LOCAL_SCHEME, MANUFACTURER, Concept, FindingReport
from utils.dicom_deidentify import BASIC_PROFILE_CODE

# What a reader is told about the objects' identity: none was ever written (PS3.15 E.1, by construction).
DEIDENTIFICATION_METHOD = "No patient data written; MedSight opaque ids only"

SR_SERIES_NUMBER = 900
SC_SERIES_NUMBER = 901
MAP_SERIES_NUMBER = 902
# The SR is not verified by a person; a clinician's review (issue "clinician review") would make it final.
PRELIMINARY = False


def _coded(concept: Concept):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=concept.code, scheme_designator=concept.scheme, meaning=concept.meaning)


def _stamp(dataset: Dataset, at: datetime) -> None:
    """The report's own time is the prediction's, so every download of it is the same object."""
    dataset.ContentDate, dataset.ContentTime = at.strftime("%Y%m%d"), at.strftime("%H%M%S")
    if "InstanceCreationDate" in dataset:
        dataset.InstanceCreationDate, dataset.InstanceCreationTime = dataset.ContentDate, dataset.ContentTime
    for equipment in dataset.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = at.strftime("%Y%m%d%H%M%S")
    for keyword in ("SeriesDate", "SeriesTime"):
        if keyword in dataset:
            delattr(dataset, keyword)


def _declare(dataset: Dataset) -> None:
    """Say that nobody's identity is in the object, and what the private coding scheme is (PS3.3 C.12.1.1.4)."""
    from pydicom.sequence import Sequence

    code_value, scheme, meaning = BASIC_PROFILE_CODE
    method = Dataset()
    method.CodeValue, method.CodingSchemeDesignator, method.CodeMeaning = code_value, scheme, meaning
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    dataset.DeidentificationMethodCodeSequence = Sequence([method])
    local = Dataset()
    local.CodingSchemeDesignator = LOCAL_SCHEME
    local.CodingSchemeName = "MedSight findings and prediction terms"
    local.CodingSchemeResponsibleOrganization = MANUFACTURER
    dataset.CodingSchemeIdentificationSequence = Sequence([local])


def encoded(dataset: Dataset) -> bytes:
    """The dataset as a DICOM file (PS3.10), with an empty preamble."""
    out = io.BytesIO()
    dataset.preamble = b"\x00" * 128
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def secondary_capture(report: FindingReport, pixels: np.ndarray) -> Dataset:
    """The classified photo (H x W x 3 RGB, or H x W grey, 8 bits) as a Secondary Capture image in its own study."""
    from highdicom.sc import SCImage

    image = SCImage(
        pixel_array=np.ascontiguousarray(pixels, dtype=np.uint8),
        photometric_interpretation="RGB" if pixels.ndim == 3 else "MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid=report.uid("study"),
        series_instance_uid=report.uid("image series"),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=report.uid("image"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),  # highdicom asks for one; emptied below
    )
    # How a handheld photo or a cropped cell lies to the body is unknown: Type 2, so present and empty.
    image.PatientOrientation = ""
    image.Laterality = ""  # Type 2C: a skin site or a breast may be paired, and which side is not known
    image.BurnedInAnnotation = "NO"
    _stamp(image, report.created_at)
    _declare(image)
    return image


def _described(image: Dataset) -> Dataset:
    """The image as the Image Library reads it. highdicom describes a radiograph by its orientation and pixel
    spacing; an upload kept without them (both Type 2C or 3) is described by its SOP class, rows and columns
    only, which is what a reader can trust about it."""
    if all(keyword in image for keyword in ("PatientOrientation", "ImagerPixelSpacing")):
        return image
    described = Dataset(image)
    described.Modality = "OT"  # this copy steers highdicom's descriptors only; the library codes the SOP class
    return described


def structured_report(report: FindingReport, source: Dataset, *, copy: str = "") -> Dataset:
    """The prediction as a TID 1500 Measurement Report about source (an image with Study/Series/SOP UIDs).

    copy names a second SR of the same prediction about another copy of the image (the PACS's original,
    in its own study): its series and instance UIDs differ from the download's, as two objects' must.
    """
    from highdicom.sr import (
        AlgorithmIdentification,
        Comprehensive3DSR,
        DeviceObserverIdentifyingAttributes,
        Measurement,
        MeasurementReport,
        MeasurementsAndQualitativeEvaluations,
        ObservationContext,
        ObserverContext,
        QualitativeEvaluation,
        SourceImageForMeasurementGroup,
        TrackingIdentifier,
    )

    algorithm = AlgorithmIdentification(name=report.model.name, version=report.model.version, manufacturer=MANUFACTURER)
    unitless = codes.UCUM.NoUnits
    evaluations = [
        QualitativeEvaluation(codes.DCM.Finding, _coded(report.finding.concept)),
        QualitativeEvaluation(_coded(report.flag), codes.SCT.Yes if report.flagged else codes.SCT.No),
    ]
    measurements = [
        Measurement(
            name=_coded(report.local(f"{c.name}.probability", f"Probability of {c.concept.meaning}"[:64])),
            value=c.probability,
            unit=unitless,
        )
        for c in report.classes
    ]
    if report.prediction_set is not None:
        member = report.local("prediction_set", "Finding not ruled out (prediction set)")
        evaluations += [QualitativeEvaluation(_coded(member), _coded(c.concept)) for c in report.prediction_set]
    if report.set_coverage is not None:
        coverage = report.local("set_coverage", "Prediction set coverage")
        measurements.append(Measurement(name=_coded(coverage), value=report.set_coverage, unit=unitless))
    if report.certainty is not None:
        value = report.local(f"certainty.{report.certainty}", f"Prediction set {report.certainty}")
        evaluations.append(QualitativeEvaluation(codes.DCM.CertaintyOfFinding, _coded(value)))
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=report.uid("finding"), identifier=f"{report.modality} finding"),
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=[SourceImageForMeasurementGroup.from_source_image(source)],
    )
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=report.uid(f"model {report.model.name} {report.model.version}"),
            name=report.model.name,
            manufacturer_name=MANUFACTURER,
            model_name=f"{report.model.name} {report.model.version}",
        ),
    )
    content = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[group],
        referenced_images=[_described(source)],
    )
    sr = Comprehensive3DSR(
        evidence=[source],
        content=content[0],
        series_instance_uid=report.uid(f"{copy}sr series"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=report.uid(f"{copy}sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=PRELIMINARY,
        is_verified=False,
    )
    sr.SeriesDescription = f"MedSight {report.modality_display}"[:64]
    sr.SoftwareVersions = f"{report.model.name} {report.model.version}"[:64]
    _stamp(sr, report.created_at)
    _declare(sr)
    return sr


# The map's quantity: how strongly the model's class activation map points at a pixel for the predicted class,
# scaled so that its peak is 1. MedSight's own concept (99MEDSIGHT), as no public code names it.
ATTENTION = Concept("attention", LOCAL_SCHEME, "Model attention (class activation map)")
MAP_LEVELS = 65535  # stored as 16-bit integers; the real-world value mapping takes them to 0..1


def _placed(report: FindingReport, source: Dataset) -> Dataset:
    """source as the map is laid on it: its own frame of reference, or, for an image without one (a photo's
    Secondary Capture, a radiograph), a plane of the map's own (derived from the prediction's id) with the
    source's pixel spacing where it gives one, 1 mm otherwise. highdicom cannot yet write a map of an image
    without a frame of reference; the map still names source as the image it derives from."""
    if "FrameOfReferenceUID" in source:
        return source
    placed = Dataset(source)
    placed.FrameOfReferenceUID = report.uid("map frame of reference")
    placed.PositionReferenceIndicator = ""
    placed.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    placed.ImagePositionPatient = [0, 0, 0]
    placed.PixelSpacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing") or [1, 1]
    placed.SliceThickness = 1
    return placed


def parametric_map(report: FindingReport, source: Dataset, attention: np.ndarray) -> Dataset:
    """The model's attention for the predicted class as a Parametric Map on source's pixel grid, in its study.

    attention is (Rows, Columns) in 0..1, already laid onto source (ActivationMap.on_grid); the map derives
    from source and shares its frame of reference where it has one.
    """
    from highdicom import VOILUTTransformation
    from highdicom.pm import ParametricMap, RealWorldValueMapping

    if attention.shape != (source.Rows, source.Columns):
        raise ValueError(f"attention is {attention.shape}, the source image {(source.Rows, source.Columns)}")
    stored = np.rint(np.clip(attention, 0.0, 1.0) * MAP_LEVELS).astype(np.uint16)
    mapping = RealWorldValueMapping(
        lut_label="ATTENTION",
        lut_explanation=f"Attention for {report.finding.concept.meaning}"[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(0, MAP_LEVELS),
        slope=1 / MAP_LEVELS,
        intercept=0,
        quantity_definition=_coded(ATTENTION),
    )
    pmap = ParametricMap(
        source_images=[_placed(report, source)],
        pixel_array=stored,
        series_instance_uid=report.uid("map series"),
        series_number=MAP_SERIES_NUMBER,
        sop_instance_uid=report.uid("map"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=report.model.name[:64],
        software_versions=f"{report.model.name} {report.model.version}"[:64],
        device_serial_number=report.model.sha256[:16] or report.model.version[:64],
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[VOILUTTransformation(window_center=MAP_LEVELS / 2, window_width=MAP_LEVELS)],
        content_label="ATTENTION",
        content_description=f"Where {report.model.name} looked for {report.finding.concept.meaning}"[:64],
    )
    pmap.SeriesDescription = f"MedSight {report.modality_display} attention"[:64]
    # The same object on every download: highdicom draws a fresh dimension organization UID otherwise.
    dimensions = report.uid("map dimensions")
    for item in [*pmap.get("DimensionOrganizationSequence", []), *pmap.get("DimensionIndexSequence", [])]:
        item.DimensionOrganizationUID = dimensions
    pmap.Laterality = source.get("Laterality", "")  # Type 2C: as the image's, empty where the side is not known
    _stamp(pmap, report.created_at)
    _declare(pmap)
    return pmap
