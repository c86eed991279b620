CREATE TABLE `allgroup` (
	`id` int AUTO_INCREMENT NOT NULL,
	`groupname` varchar(32) NOT NULL,
	`groupdesc` varchar(200) NOT NULL DEFAULT '',
	CONSTRAINT `allgroup_id` PRIMARY KEY(`id`),
	CONSTRAINT `allgroup_name_uq` UNIQUE(`groupname`)
);
--> statement-breakpoint
CREATE TABLE `friend` (
	`userid` int NOT NULL,
	`friendid` int NOT NULL,
	CONSTRAINT `friend_userid_friendid_pk` PRIMARY KEY(`userid`,`friendid`)
);
--> statement-breakpoint
CREATE TABLE `groupuser` (
	`groupid` int NOT NULL,
	`userid` int NOT NULL,
	`grouprole` enum('creator','normal') NOT NULL DEFAULT 'normal',
	CONSTRAINT `groupuser_groupid_userid_pk` PRIMARY KEY(`groupid`,`userid`)
);
--> statement-breakpoint
CREATE TABLE `offlinemessage` (
	`id` bigint AUTO_INCREMENT NOT NULL,
	`userid` int NOT NULL,
	`msgid` varchar(20) NOT NULL,
	`message` text NOT NULL,
	`ts` bigint NOT NULL,
	CONSTRAINT `offlinemessage_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `setting` (
	`name` varchar(64) NOT NULL,
	`value` varchar(255) NOT NULL,
	CONSTRAINT `setting_name` PRIMARY KEY(`name`)
);
--> statement-breakpoint
CREATE TABLE `user` (
	`id` int AUTO_INCREMENT NOT NULL,
	`name` varchar(32) NOT NULL,
	`password` varchar(255) NOT NULL,
	`state` enum('online','offline') NOT NULL DEFAULT 'offline',
	`tokengen` int NOT NULL DEFAULT 0,
	CONSTRAINT `user_id` PRIMARY KEY(`id`),
	CONSTRAINT `user_name_uq` UNIQUE(`name`)
);
--> statement-breakpoint
CREATE INDEX `groupuser_user_ix` ON `groupuser` (`userid`);--> statement-breakpoint
CREATE INDEX `offline_user_ix` ON `offlinemessage` (`userid`,`id`);--> statement-breakpoint
CREATE INDEX `offline_user_msg_ix` ON `offlinemessage` (`userid`,`msgid`);