/* Settings of `nptrack synth` (section `synth`).  Ranges may be given as one value or as
 * [lo, hi], drawn once per video (domain randomisation for training); NPT_SET_LOG ranges are
 * drawn log-uniformly.  Lengths are in nm and times in s, turned into px and frames with the
 * video's drawn pixel size and frame rate, so that one config describes one physical experiment
 * at any magnification.  docs/synth.md explains the physics behind each group. */
#include <math.h>

#include "config/config.h"

#define NONE NULL, 0
#define LOG  NULL, NPT_SET_LOG

const npt_setting_def npt_synth_settings[] = {
    /* The video. */
    {"synth.seed", NPT_SET_INT, 0, 9.0e18, "1", "", NONE,
     "Seed of every random choice; the same seed and settings give the same video, bit for bit."},
    {"synth.frames", NPT_SET_INT, 1, 1e7, "100", "frames", NONE, "Number of frames to write."},
    {"synth.width", NPT_SET_INT, 16, 16384, "512", "px", NONE, "Frame width."},
    {"synth.height", NPT_SET_INT, 16, 16384, "512", "px", NONE, "Frame height."},
    {"synth.bit_depth", NPT_SET_INT, 8, 16, "8", "bits", NONE,
     "Grey levels of the frames: 8 (uint8) or 16 (uint16); other values are refused."},
    {"synth.gzip_level", NPT_SET_INT, 0, 9, "0", "", NONE,
     "gzip level of /frames in video.h5 (0: uncompressed, fastest; shuffle is added for 16 bits)."},
    {"synth.pixel_size_nm", NPT_SET_FRANGE, 0.005, 50, "[0.1, 0.3]", "nm/px", LOG,
     "Specimen size of one pixel (magnification).  Below about 0.1 nm/px the Ni(111) and NiO "
     "lattice fringes are resolved (period >= 2 px)."},
    {"synth.frame_rate_hz", NPT_SET_FRANGE, 0.01, 5000, "[10, 25]", "1/s", LOG,
     "Frames per second of the camera; every rate below is per second of specimen time."},

    /* The particles at the start. */
    {"synth.diameter_nm", NPT_SET_FRANGE, 0.1, 1000, "[3, 8]", "nm", LOG,
     "Median diameter of the particles (sizes are lognormal around it).  In pixels: "
     "diameter_nm / pixel_size_nm; the scene clamps diameters to a third of the smaller frame "
     "side."},
    {"synth.size_spread", NPT_SET_FRANGE, 0, 1, "[0.1, 0.3]", "", NONE,
     "Standard deviation of log(diameter): 0 gives equal sizes, 0.3 a typical catalyst."},
    {"synth.coverage", NPT_SET_FRANGE, 0, 0.6, "[0.05, 0.2]", "", NONE,
     "Fraction of the specimen area covered by particles (projected).  0.4-0.5 with small "
     "particles and a small min_gap_nm makes a dense, almost touching monolayer."},
    {"synth.min_gap_nm", NPT_SET_FRANGE, 0, 100, "0.5", "nm", NONE,
     "Smallest gap between particle outlines at the start; moving particles keep at least half "
     "of it (hard-core repulsion), except pairs that sinter."},
    {"synth.aspect_max", NPT_SET_FRANGE, 1, 3, "[1.05, 1.35]", "", NONE,
     "Largest aspect ratio (long / short axis); each particle's is uniform in [1, aspect_max]."},
    {"synth.irregularity", NPT_SET_FRANGE, 0, 0.2, "[0.0, 0.06]", "", NONE,
     "Largest relative amplitude of the 3rd and 4th radial harmonics of an outline (facets, "
     "bumps); each particle's two amplitudes are uniform in [0, irregularity]."},
    {"synth.rotation_deg_s", NPT_SET_FRANGE, 0, 360, "[0, 3]", "deg/s", NONE,
     "Standard deviation of each particle's slow rotation rate."},

    /* Motion. */
    {"synth.drift_nm_s", NPT_SET_FRANGE, 0, 1e4, "[0, 1]", "nm/s", NONE,
     "Mean speed of specimen drift: the whole field (support and particles) slides, so "
     "particles enter and leave at the borders."},
    {"synth.drift_wander_s", NPT_SET_FRANGE, 0.01, 1e6, "[5, 60]", "s", LOG,
     "Time over which the drift direction turns by about one radian (its speed wanders by "
     "about 30 % on the same time scale)."},
    {"synth.diffusion_nm2_s", NPT_SET_FRANGE, 0, 1e4, "[0.0, 0.02]", "nm^2/s", NONE,
     "Brownian diffusion coefficient of a particle of ref_diameter_nm; it scales as "
     "1/diameter (Stokes-Einstein)."},
    {"synth.ref_diameter_nm", NPT_SET_FLOAT, 0.1, 1000, "5", "nm", NONE,
     "Diameter at which diffusion_nm2_s, oxidation_rate_hz and reduction_rate_hz are given."},

    /* Ostwald ripening. */
    {"synth.ripening_nm2_s", NPT_SET_FRANGE, 0, 100, "[0.0, 0.01]", "nm^2/s", NONE,
     "Ostwald ripening constant K of dr/dt = K (1/r* - 1/r): particles larger than the "
     "critical radius r* grow, smaller ones shrink, total volume is conserved."},
    {"synth.vanish_px", NPT_SET_FLOAT, 0.2, 20, "1.5", "px", NONE,
     "A particle that shrinks below this diameter vanishes (its track ends)."},

    /* Sintering (particle migration and coalescence). */
    {"synth.sinter_rate_hz", NPT_SET_FRANGE, 0, 100, "[0.0, 0.002]", "1/s", NONE,
     "Rate, per particle, of starting to coalesce with a near neighbour: the pair attracts, "
     "touches and becomes one particle with a new id (a merge event)."},
    {"synth.sinter_reach", NPT_SET_FRANGE, 0, 10, "0.6", "", NONE,
     "Largest gap between outlines of a sintering pair, in units of the sum of their radii."},
    {"synth.sinter_triple_prob", NPT_SET_FRANGE, 0, 1, "0.15", "", NONE,
     "Probability that a third neighbour joins a coalescence (a three-parent merge)."},
    {"synth.sinter_approach_s", NPT_SET_FRANGE, 0.01, 1e5, "[1, 3]", "s", LOG,
     "Time a sintering group takes to close its gap; a group not in contact after three times "
     "this (blocked by neighbours) gives up."},
    {"synth.sinter_relax_s", NPT_SET_FRANGE, 0.01, 1e5, "[2, 6]", "s", LOG,
     "Time constant with which a merged particle, born elongated along its parents' axis, "
     "relaxes towards a round shape."},

    /* Gas environment: oxidation into hollow shells, reduction and regeneration. */
    {"synth.gas", NPT_SET_ENUM, 0, 0, "\"reducing\"", "", "reducing|oxidising|cycle", 0,
     "Gas over the specimen: reducing (H2: particles stay metal), oxidising (O2: particles "
     "oxidise into hollow NiO shells by the Kirkendall effect) or cycle (oxidising for the first "
     "half of each gas_period_s, then reducing)."},
    {"synth.gas_period_s", NPT_SET_FRANGE, 0.01, 1e7, "[20, 60]", "s", LOG,
     "Period of the redox cycle (gas = cycle)."},
    {"synth.oxidation_rate_hz", NPT_SET_FRANGE, 0, 100, "[0.02, 0.1]", "1/s", NONE,
     "Fraction of the metal of a particle of ref_diameter_nm oxidised per second; it scales as "
     "1/diameter (small particles oxidise faster), times a random factor per particle."},
    {"synth.reduction_rate_hz", NPT_SET_FRANGE, 0, 100, "[0.05, 0.2]", "1/s", NONE,
     "Fraction of the oxide of a particle of ref_diameter_nm reduced back per second (same "
     "size scaling)."},
    {"synth.oxide_expansion", NPT_SET_FRANGE, 1, 2.5, "[1.3, 1.7]", "", NONE,
     "Volume of oxide formed per volume of metal consumed (Pilling-Bedworth ratio; NiO/Ni 1.65)."},
    {"synth.void_frac", NPT_SET_FRANGE, 0, 0.9, "[0.5, 0.7]", "", NONE,
     "Radius of the Kirkendall void over the outer radius of a fully oxidised shell."},
    {"synth.split_prob", NPT_SET_FRANGE, 0, 1, "[0.3, 0.8]", "", NONE,
     "Probability that a hollow shell, when reduced, breaks up into several small new metal "
     "particles (regeneration: a split event) instead of shrinking back into one."},
    {"synth.split_children", NPT_SET_IRANGE, 2, 12, "[2, 6]", "particles", NONE,
     "Number of particles a shell breaks into; unlike other ranges this one is drawn per split."},

    /* Lattice fringes. */
    {"synth.lattice_metal_nm", NPT_SET_FLOAT, 0.05, 5, "0.203", "nm", NONE,
     "Lattice plane spacing imaged in metal particles (Ni(111): 0.203 nm).  Fringes of period "
     "below 2 px are not resolved and not drawn."},
    {"synth.lattice_oxide_nm", NPT_SET_FLOAT, 0.05, 5, "0.209", "nm", NONE,
     "Lattice plane spacing imaged in oxide shells (NiO(200): 0.209 nm)."},
    {"synth.zone_axis_frac", NPT_SET_FRANGE, 0, 1, "[0.1, 0.5]", "", NONE,
     "Fraction of particles oriented on a zone axis, which show lattice fringes."},
    {"synth.lattice_amp", NPT_SET_FRANGE, 0, 0.5, "[0.03, 0.12]", "", NONE,
     "Relative amplitude of lattice fringes inside a particle."},

    /* Imaging. */
    {"synth.dose_e_px", NPT_SET_FRANGE, 0.01, 1e7, "[30, 500]", "e/px", LOG,
     "Electrons per pixel per frame through bare support: Poisson shot noise has a relative "
     "std of 1/sqrt(dose)."},
    {"synth.background", NPT_SET_FRANGE, 0.02, 0.98, "[0.35, 0.65]", "", NONE,
     "Mean grey level of bare support, as a fraction of full scale."},
    {"synth.invert_prob", NPT_SET_FLOAT, 0, 1, "0", "", NONE,
     "Probability that a video has inverted contrast (particles bright, as in some detector or "
     "export settings)."},
    {"synth.metal_mfp_nm", NPT_SET_FRANGE, 0.1, 1e4, "[3.0, 8.0]", "nm", LOG,
     "Attenuation length of metal in bright field: a thickness t transmits exp(-t / mfp)."},
    {"synth.oxide_mfp_nm", NPT_SET_FRANGE, 0.1, 1e4, "[8.0, 20.0]", "nm", LOG,
     "Attenuation length of the oxide (longer than the metal's: oxide shells look lighter)."},
    {"synth.support_contrast", NPT_SET_FRANGE, 0, 0.5, "[0.04, 0.12]", "", NONE,
     "Relative standard deviation of the amorphous support texture."},
    {"synth.support_grain_nm", NPT_SET_FRANGE, 0.01, 100, "[0.25, 0.6]", "nm", LOG,
     "Correlation length (speckle size) of the amorphous support texture."},
    {"synth.fresnel_amp", NPT_SET_FRANGE, 0, 0.5, "[0.0, 0.12]", "", NONE,
     "Relative amplitude of the Fresnel fringe along particle outlines (defocus)."},
    {"synth.fresnel_width_nm", NPT_SET_FRANGE, 0.01, 100, "[0.3, 1.0]", "nm", LOG,
     "Width of the Fresnel fringe."},
    {"synth.underfocus_prob", NPT_SET_FLOAT, 0, 1, "0.7", "", NONE,
     "Probability that a video is recorded under focus (bright fringe outside outlines) rather "
     "than over focus (dark fringe)."},
    {"synth.blur_px", NPT_SET_FRANGE, 0, 10, "[0.4, 1.0]", "px", NONE,
     "Detector point-spread function, Gaussian sigma."},
    {"synth.gradient", NPT_SET_FRANGE, 0, 0.5, "[0.0, 0.1]", "", NONE,
     "Relative change of illumination across the field (its direction is random)."},
    {"synth.blank_prob", NPT_SET_FRANGE, 0, 1, "0", "", NONE,
     "Probability that a frame is blank (beam blanked: dark, no ground-truth rows)."},
    {"synth.drop_prob", NPT_SET_FRANGE, 0, 1, "0", "", NONE,
     "Probability that the recording drops a frame: the specimen moves on two time steps "
     "before the next written frame (frame numbers in gt.txt simply continue)."},
    {NULL, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};
