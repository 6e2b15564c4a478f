/* The schema: every module's table of settings, in the order they appear in config/default.cfg. */
#include "config/config.h"

extern const npt_setting_def npt_synth_settings[];
extern const npt_setting_def npt_detect_settings[];
extern const npt_setting_def npt_archive_settings[];
extern const npt_setting_def npt_track_settings_table[];
extern const npt_setting_def npt_chunking_settings_table[];

const npt_setting_def *const npt_config_schema[] = {
    npt_synth_settings, npt_detect_settings, npt_track_settings_table, npt_chunking_settings_table,
    npt_archive_settings, NULL};
